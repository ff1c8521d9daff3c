/** The one run-while-busy loop and the passes' policies (app/passes.ts) it runs, without a database. */
import { describe, expect, it } from 'vitest';
import { MONITOR_POLICY, NOTIFIER_POLICY, PROCESSOR_POLICY, SCHEDULER_POLICY } from '../../../app/passes';
import { runWhileBusy, type Pass } from '../../../app/run-while-busy';

/** A processor pass that commits the given counts in turn, then nothing; each commit writes `eventsEach` events. */
function scripted(commits: number[], eventsEach = 1): Pass<{ stepped: number; committed: number; lostRaces: number }> {
  let i = 0;
  return {
    ...PROCESSOR_POLICY,
    run: async () => {
      const committed = commits[i++] ?? 0;
      return { stepped: 1, committed, lostRaces: 0, queued: 0, announced: committed * eventsEach };
    },
  };
}

describe('runWhileBusy', () => {
  it('runs while a pass reports more, adds up the results and gathers the nudges once', async () => {
    const { total, nudges } = await runWhileBusy(scripted([2, 3]));
    expect(total).toEqual({ stepped: 3, committed: 5, lostRaces: 0, queued: 0, announced: 5, passes: 3, stoppedBy: 'idle' });
    expect([...nudges].sort()).toEqual(['agents', 'notifier']);
  });

  it('nudges the notifier only for passes that wrote events (issue 18: a running job\'s steps write none)', async () => {
    const { nudges } = await runWhileBusy(scripted([2, 3], 0));
    expect([...nudges]).toEqual(['agents']);
  });

  it('always runs the first processor pass, and no later one under the safety margin', async () => {
    const { total } = await runWhileBusy(scripted([1, 1, 1]), { remainingMs: () => 1_000 });
    expect(total).toMatchObject({ passes: 1, committed: 1, stoppedBy: 'time' });
  });

  it('starts no notifier pass when its claim could not outlast one send', async () => {
    let runs = 0;
    const pass = { ...NOTIFIER_POLICY, run: async () => (runs++, NOTIFIER_POLICY.empty) };
    const { total } = await runWhileBusy(pass, { remainingMs: () => 10_000 });
    expect(total).toMatchObject({ passes: 0, claimed: 0, stoppedBy: 'time' });
    expect(runs).toBe(0);
  });

  it('stops at its own limit and calls afterPass with each pass and its nudges', async () => {
    const seen: string[][] = [];
    const { total } = await runWhileBusy(scripted([1, 1, 1, 1]), { maxPasses: 2, afterPass: (_r, wakes) => seen.push([...wakes]) });
    expect(total).toMatchObject({ passes: 2, stoppedBy: 'limit' });
    expect(seen).toEqual([['agents', 'notifier'], ['agents', 'notifier']]);
  });

  it('wakes what the data says: the scheduler the processor after a launch, the monitor both after a loss and an alert', () => {
    expect(SCHEDULER_POLICY.nudges({ ...SCHEDULER_POLICY.empty, launched: 1 })).toEqual(['processor']);
    expect(SCHEDULER_POLICY.nudges(SCHEDULER_POLICY.empty)).toEqual([]);
    const raised = { ...MONITOR_POLICY.empty.raised, worker_lost: 1 };
    expect(MONITOR_POLICY.nudges({ raised, lostExecutions: 1 })).toEqual(['processor', 'notifier']);
    // The notifier goes again at once only after a full batch (even of skipped pairs): a pass that read less saw
    // everything announced before it, and what came during it brings its own nudge (issue 18).
    expect(NOTIFIER_POLICY.more({ ...NOTIFIER_POLICY.empty, skipped: 3, fullBatches: 1 })).toBe(true);
    expect(NOTIFIER_POLICY.more({ ...NOTIFIER_POLICY.empty, claimed: 3, skipped: 3 })).toBe(false);
  });
});
