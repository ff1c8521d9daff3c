/**
 * `kuroko import kuroko2` as users run it: the real command as a child process (bin/kuroko.js) against a Kuroko2
 * database without a table prefix, into a SQLite file, with --dry-run, --report, --custom-tasks and a second run.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../../cli/import-command';
import { createDatabase } from '../../db/connection';
import { fromDbBool, fromDbInt } from '../../db/column-codec';
import { createKuroko2Fixture, CUSTOM_TASKS_JSON } from './kuroko2-fixture';
import type { Kuroko2Fixture } from './kuroko2-fixture';

const run = promisify(execFile);
const KUROKO = fileURLToPath(new URL('../../bin/kuroko.js', import.meta.url));
const COMMAND_TIMEOUT_MS = 120_000;

let fixture: Kuroko2Fixture;
let dir: string;
beforeAll(async () => {
  fixture = await createKuroko2Fixture('');
  dir = mkdtempSync(join(tmpdir(), 'kuroko-import-'));
  writeFileSync(join(dir, 'custom-tasks.json'), CUSTOM_TASKS_JSON);
});
afterAll(async () => {
  await fixture?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function kuroko(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [KUROKO, ...args], { timeout: COMMAND_TIMEOUT_MS, env: { ...process.env, KUROKO_DATABASE_URL: '' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function collect() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
}

describe('kuroko import kuroko2 (child process)', () => {
  it('dry-runs, imports, and a second run changes nothing', { timeout: 4 * COMMAND_TIMEOUT_MS }, async () => {
    const target = `sqlite:${join(dir, 'kuroko.db')}`;
    const common = ['import', 'kuroko2', '--from', fixture.url, '--database-url', target, '--table-prefix', '', '--custom-tasks', join(dir, 'custom-tasks.json'), '--history-days', '7'];

    const dry = await kuroko([...common, '--dry-run', '--report', join(dir, 'dry.json')]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Dry run: nothing was written.');
    expect(dry.stdout).toContain('Definitions: 6 read; 6 would be created');
    expect(dry.stdout).toMatch(/#42 remind failures\n\s+invalid_script: line 1, column 1: `kuroko_runner` is not supported/);
    const dryReport = JSON.parse(readFileSync(join(dir, 'dry.json'), 'utf8'));
    expect(dryReport).toMatchObject({ dryRun: true, refused: false, counts: { definitions: { created: 6 } } });
    expect(existsSync(join(dir, 'kuroko.db')), 'a dry run creates no database file').toBe(false);

    const real = await kuroko([...common, '--report', join(dir, 'real.json')]);
    expect(real.code).toBe(0);
    expect(real.stdout).toContain('Import finished.');
    const realReport = JSON.parse(readFileSync(join(dir, 'real.json'), 'utf8'));
    expect({ ...realReport, dryRun: true }).toEqual(dryReport);

    const handle = createDatabase(target);
    try {
      const rows = await handle.db.selectFrom('job_definitions').select(['id', 'suspended', 'time_zone']).orderBy('id').execute();
      expect(rows.map((r) => [fromDbInt(r.id), fromDbBool(r.suspended), r.time_zone])).toEqual([
        [10, false, 'UTC'],
        [42, true, 'UTC'],
        [43, false, 'UTC'],
        [44, true, 'UTC'],
        [45, true, 'UTC'],
        [46, false, 'UTC'],
      ]);
    } finally {
      await handle.close();
    }

    const again = await kuroko([...common]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 were created, 0 updated, 6 unchanged');
    expect(again.stdout).toContain('History: 0 instances (3 imported before)');
  });

  it('refuses collisions with exit status 1, and bad arguments with 2', async () => {
    const target = `sqlite:${join(dir, 'collide.db')}`;
    const handle = createDatabase(target);
    try {
      const { migrateToLatest } = await import('../../db/migrator');
      await migrateToLatest(handle.db);
      const { insertDefinition } = await import('../helpers/engine-fixtures');
      await insertDefinition(handle.db, 10, 'noop:', { name: 'mine' });
    } finally {
      await handle.close();
    }
    const refused = collect();
    expect(await runImport(['kuroko2', '--from', fixture.url, '--database-url', target, '--table-prefix', ''], refused.io, {})).toBe(1);
    expect(refused.out.stdout).toContain('Refused: nothing was written.');
    expect(refused.out.stdout).toContain("(rerun with --merge to overwrite them):\n  #10: Kuroko2 'nightly-report 日次レポート', here 'mine'\n");
    expect(refused.out.stdout).toContain('5 would be created, 1 updated');

    for (const args of [
      ['kuroko2', '--database-url', target],
      ['kuroko2', '--from', fixture.url, '--database-url', target, '--time-zone', 'Mars/Base'],
      ['kuroko2', '--from', fixture.url, '--database-url', target, '--history-days', 'ten'],
      ['kuroko3', '--from', fixture.url],
      ['kuroko2', '--from', 'sqlite:/tmp/x.db', '--database-url', target],
    ]) {
      const bad = collect();
      expect(await runImport(args, bad.io, {}), args.join(' ')).toBe(2);
      expect(bad.out.stderr).toMatch(/kuroko import: /);
    }
  });
});
