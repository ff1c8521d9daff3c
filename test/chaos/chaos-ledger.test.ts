/**
 * The chaos harness's checker (bench/chaos/ledger.ts) over tiny synthetic ledgers: what it counts as run twice,
 * lost and announced twice. `npm run chaos` itself is too long for `npm test`; this keeps its judgement covered.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLedger, markScript, parseLedger, type CheckInput } from '../../bench/chaos/ledger';

const finished = (id: number, key: string | null = null) => ({ id, finished: true, canceled: false, idempotencyKey: key, tokenStatuses: [] });
const base: CheckInput = { ledger: '', instances: [], histories: [], events: [], deliveryIds: [] };

describe('chaos ledger checker', () => {
  it('pairs start and end lines by instance, step and pid, and ignores noise', () => {
    const runs = parseLedger('S 1 a 10 100\nnoise\nS 1 p.0 11 100\nE 1 a 10 150 0\nS 2 a 12 160\n');
    expect(runs).toEqual([
      { instanceId: 1, key: 'a', pid: 10, startMs: 100, endMs: 150, exit: 0 },
      { instanceId: 1, key: 'p.0', pid: 11, startMs: 100 },
      { instanceId: 2, key: 'a', pid: 12, startMs: 160 },
    ]);
  });

  it('a clean run: retries after failures and after a kill are not duplicates', () => {
    const ledger = [
      'S 1 r 10 100', 'E 1 r 10 150 1', // failed, retried
      'S 1 r 11 200', 'E 1 r 11 250 0',
      'S 1 e 12 300', // killed with SIGKILL (no end), its retry later
      'S 1 e 13 400', 'E 1 e 13 450 0',
      'S 1 p.0 14 500', 'S 1 p.1 15 500', 'E 1 p.0 14 550 0', 'E 1 p.1 15 560 0', // a parallel fork
    ].join('\n');
    const result = checkLedger({
      ...base,
      ledger,
      instances: [finished(1, 'k1')],
      histories: [{ instanceId: 1, shell: '/x/mark.sh r flaky', exitStatus: 0 }, { instanceId: 1, shell: '/x/mark.sh p ok', exitStatus: 0 }],
      events: [{ type: 'launch', instanceId: 1 }, { type: 'finished', instanceId: 1 }, { type: 'worker_lost', instanceId: 1 }],
      deliveryIds: ['a', 'b'],
    });
    expect(result).toMatchObject({ instances: 1, executions: 6, duplicated: 0, lost: 0, announcedTwice: 0, alerts: 1 });
    expect(result.findings).toEqual([]);
  });

  it('counts a step run again after it succeeded, a run beside a live one, and a key launched twice', () => {
    const ledger = [
      'S 1 a 10 100', 'E 1 a 10 150 0', 'S 1 a 11 200', 'E 1 a 11 250 0', // ran again after success
      'S 1 b 12 100', 'S 1 b 13 120', 'E 1 b 13 170 0', 'E 1 b 12 180 143', // overlapping runs
      'S 1 c 14 100', 'S 1 c 15 300', 'E 1 c 15 350 0', // the first still alive: a survivor
    ].join('\n');
    const result = checkLedger({
      ...base,
      ledger,
      instances: [finished(1, 'k'), finished(2, 'k')],
      alivePids: new Set([14]),
    });
    expect(result.duplicated).toBe(4);
    expect(result.findings).toEqual(
      expect.arrayContaining([
        'step 1 a ran again (pid 11) after it succeeded (pid 10)',
        'step 1 b ran (pid 13) beside an earlier run (pid 12)',
        'step 1 c ran (pid 15) beside an earlier run (pid 14)',
        'idempotency key k launched 2 instances (1, 2)',
      ]),
    );
  });

  it('counts as lost a stuck instance and a success the ledger never saw, not one a person can move', () => {
    const result = checkLedger({
      ...base,
      ledger: 'S 3 a 10 100\n',
      instances: [
        { id: 1, finished: false, canceled: false, idempotencyKey: null, tokenStatuses: ['working'] },
        { id: 2, finished: false, canceled: false, idempotencyKey: null, tokenStatuses: ['failure', 'finished'] },
        { id: 3, finished: true, canceled: false, idempotencyKey: null, tokenStatuses: [] },
        { id: 4, finished: false, canceled: true, idempotencyKey: null, tokenStatuses: [] },
      ],
      histories: [{ instanceId: 3, shell: '/x/mark.sh a ok', exitStatus: 0 }],
    });
    expect(result.lost).toBe(2);
    expect(result.findings).toEqual(['step 3 a: 1 successes recorded, 0 in the ledger', 'instance 1 is stuck (tokens: working)']);
  });

  it('counts events written twice per instance and webhook deliveries received twice', () => {
    const result = checkLedger({
      ...base,
      events: [{ type: 'finished', instanceId: 1 }, { type: 'finished', instanceId: 1 }, { type: 'failure', instanceId: 1 }, { type: 'failure', instanceId: 1 }],
      deliveryIds: ['x', 'y', 'x'],
    });
    expect(result.announcedTwice).toBe(2);
  });

  it('the marker script writes the lines the checker reads, including a flaky step failing once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-chaos-ledger-'));
    try {
      const mark = join(dir, 'mark.sh');
      const ledger = join(dir, 'ledger');
      writeFileSync(mark, markScript(ledger, dir), { mode: 0o755 });
      const run = (label: string, mode: string, index?: string) => {
        try {
          execFileSync(mark, [label, mode], { env: { PATH: process.env.PATH, KUROKO2_JOB_INSTANCE_ID: '7', ...(index ? { KUROKO2_PARALLEL_FORK_INDEX: index } : {}) } });
          return 0;
        } catch (error) {
          return (error as { status: number }).status;
        }
      };
      expect([run('r', 'flaky'), run('r', 'flaky'), run('s', 'fail'), run('p', 'ok', '1')]).toEqual([1, 0, 1, 0]);
      const runs = parseLedger(readFileSync(ledger, 'utf8'));
      expect(runs.map((r) => [r.instanceId, r.key, r.exit])).toEqual([[7, 'r', 1], [7, 'r', 0], [7, 's', 1], [7, 'p.1', 0]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
