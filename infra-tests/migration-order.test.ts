/**
 * Invariants of the deploy-time migration:
 * - every scheduled rule starts after the migration: on a first deploy a tick must not meet a missing schema. A rule
 *   of the Engine stack names the migration in DependsOn (CloudFormation creates a resource after those it depends
 *   on: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html); a rule of a
 *   later stack belongs to a stack that depends on the Engine stack, deployed once the Engine stack is complete.
 * - the migration runs when migrations change, and only then: CloudFormation calls a custom resource's provider
 *   on update only when its properties change
 *   (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html), so its
 *   Trigger property is a fingerprint of the migration files, never the synthesis time.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MIGRATIONS_DIR, migrationsFingerprint } from '../cdk/migration-trigger';
import { PROJECT_ROOT } from '../cdk/paths';
import { jsonOf } from './helpers/cross-stack';
import { logicalId, synthKuroko, type Synthesised } from './helpers/synth-app';

/** Two syntheses in one test: under load each can take tens of seconds. */
const SYNTHESES_TIMEOUT_MS = 180_000;

const triggerOf = (built: Synthesised): unknown => {
  const [migration] = Object.values(built.templates.engine.findResources('Custom::KurokoMigrations'));
  return (migration as { Properties: { Trigger: unknown } }).Properties.Trigger;
};

describe('invariant: scheduled rules start after the migration', () => {
  const built = synthKuroko();
  const migrationId = logicalId(built.engine, built.engine.contents.migrations);

  it('makes every rule of the Engine stack depend on the migration custom resource', () => {
    const rules = Object.entries(jsonOf(built.templates.engine).Resources ?? {}).filter(([, r]) => r.Type === 'AWS::Events::Rule');
    expect(rules.length).toBeGreaterThanOrEqual(4);
    for (const [id, rule] of rules) {
      expect([rule.DependsOn ?? []].flat(), id).toContain(migrationId);
    }
  });

  it('deploys every other stack holding a rule after the Engine stack', () => {
    for (const [name, stack] of [['data', built.data], ['workers', built.workers]] as const) {
      const rules = built.templates[name].findResources('AWS::Events::Rule');
      if (Object.keys(rules).length === 0) continue;
      expect(stack.dependencies, name).toContain(built.engine);
    }
    expect(Object.keys(built.templates.workers.findResources('AWS::Events::Rule'))).toHaveLength(1);
  });
});

describe('invariant: the migration trigger changes only when migrations change', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-migrations-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => vi.useRealTimers());

  it('is the fingerprint of db/migrations, whatever the time of synthesis', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const first = triggerOf(synthKuroko());
    vi.setSystemTime(new Date('2026-06-01T12:34:56Z'));
    const second = triggerOf(synthKuroko());
    expect(first).toBe(migrationsFingerprint());
    expect(second).toBe(first);
  }, SYNTHESES_TIMEOUT_MS);

  it('changes when a migration is added or edited, not otherwise', () => {
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const copy = migrationsFingerprint(dir);
    expect(copy).toBe(migrationsFingerprint());
    writeFileSync(join(dir, '9999-later.ts'), 'export const later = {};\n');
    const added = migrationsFingerprint(dir);
    expect(added).not.toBe(copy);
    writeFileSync(join(dir, '9999-later.ts'), 'export const later = { up: async () => {} };\n');
    expect(migrationsFingerprint(dir)).not.toBe(added);
  });

  it('is not set to anything else by the CDK app entry', () => {
    const entry = readFileSync(join(PROJECT_ROOT, 'cdk', 'bin', 'app.ts'), 'utf8');
    expect(entry).not.toMatch(/migrationTrigger/);
  });
});
