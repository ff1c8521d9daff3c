import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations, aws_sns as sns } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { MIN_REASON_LENGTH, NAG_PACK, acknowledge, applyNag } from '../cdk/nag';
import { TEST_CONSOLE, synthKuroko } from './helpers/synth-app';

interface Violation {
  ruleName: string;
  severity: string;
  violatingConstructs: { constructPath: string }[];
  acknowledgedId?: string;
  reason?: string;
}
interface Report {
  pluginReports: { pluginName: string; conclusion: string; violations: Violation[]; suppressedViolations?: Violation[] }[];
}

const outdir = mkdtempSync(join(tmpdir(), 'kuroko-nag-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const readReport = (dir: string): Report => JSON.parse(readFileSync(join(dir, 'validation-report.json'), 'utf8')) as Report;
const nagReport = (report: Report) => {
  const found = report.pluginReports.find((r) => r.pluginName === NAG_PACK);
  if (!found) throw new Error(`no ${NAG_PACK} report; plugins: ${report.pluginReports.map((r) => r.pluginName).join(', ')}`);
  return found;
};

describe('cdk-nag AwsSolutions', () => {
  // With the console on, so its signing key is checked too.
  const built = synthKuroko({ console: TEST_CONSOLE }, { nag: true, outdir });
  // In-memory synthesis throws a ValidationFailed error carrying the report when a rule is violated.
  built.app.synth();
  const report = nagReport(readReport(outdir));

  it('reports no unacknowledged finding, error or warning, in any stack', () => {
    const open = report.violations.map((v) => `${v.severity} ${v.ruleName} at ${v.violatingConstructs.map((c) => c.constructPath).join(', ')}`);
    expect(open).toEqual([]);
    expect(report.conclusion).toBe('success');
  });

  it('records a reason that says why for every acknowledged finding', () => {
    const suppressed = report.suppressedViolations ?? [];
    expect(suppressed.length).toBeGreaterThan(0);
    for (const v of suppressed) {
      expect(v.reason?.trim().length ?? 0, `${v.ruleName}`).toBeGreaterThanOrEqual(MIN_REASON_LENGTH);
    }
  });

  it('has no stale acknowledgement: each one suppresses a finding that exists', () => {
    const used = new Set((report.suppressedViolations ?? []).map((v) => v.acknowledgedId));
    const declared = built.app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.keys(m.data as Record<string, string>))
      .filter((id) => id.startsWith(`${NAG_PACK}::`));
    expect(declared.length).toBeGreaterThan(0);
    expect(declared.filter((id) => !used.has(id))).toEqual([]);
  });
});

describe('cdk-nag wiring', () => {
  it('fails synthesis on a non-compliant resource (the check can fail)', () => {
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'kuroko-nag-bad-')) });
    const stack = new Stack(app, 'Bad');
    new sns.Topic(stack, 'PlainTopic');
    applyNag(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-SNS2|AwsSolutions-SNS3/);
  });

  it('refuses an acknowledgement without a real reason', () => {
    const stack = new Stack(new App(), 'S');
    expect(() => acknowledge(stack, 'AwsSolutions-SNS2', 'not needed')).toThrow(/needs a reason/);
  });
});
