/**
 * The finish watch (app/finish-watch.ts) reads nothing while a processor pass runs, and still reports a finish that
 * landed meanwhile once the pass is over (issue 18: its reads were a quarter of a busy server's statements).
 */
import { expect, it } from 'vitest';
import { createFinishWatch } from '../../../app/finish-watch';
import { waitFor } from '../../helpers/wait-for';

it('does not read while paused and reports afterwards what finished during the pause', async () => {
  let signature = '0/0';
  let reads = 0;
  let paused = false;
  let finishes = 0;
  const watch = createFinishWatch({
    probe: async () => (reads++, { inFlight: true, finishedSignature: signature }),
    onFinished: () => finishes++,
    pace: { hotMs: 1, idleMs: 1_000 },
    onError: (error) => {
      throw error;
    },
    paused: () => paused,
  });
  watch.start();
  try {
    await waitFor(() => reads >= 2, { description: 'the first reads' });
    paused = true;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const readsWhilePaused = reads;
    signature = '1/42';
    await new Promise((resolve) => setTimeout(resolve, 30));
    // At most the read that was in flight when the pause began.
    expect(reads - readsWhilePaused).toBe(0);
    expect(finishes).toBe(0);
    paused = false;
    await waitFor(() => finishes === 1, { description: 'the finish seen after the pause' });
  } finally {
    await watch.stop();
  }
});
