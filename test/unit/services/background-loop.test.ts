/** The long-running loop's nudges: gathered into one run per event-loop turn, or per delay when one is set. */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createBackgroundLoop, type BackgroundLoop } from '../../../app/background-loop';
import type { Pass } from '../../../app/run-while-busy';

const HOUR_MS = 3_600_000;

function countingLoop(nudgeDelayMs?: number): { loop: BackgroundLoop; runs: () => number } {
  let runs = 0;
  const pass: Pass<{ n: number }> = {
    name: 'notifier',
    empty: { n: 0 },
    more: () => false,
    nudges: () => [],
    run: () => {
      runs++;
      return Promise.resolve({ n: 1 });
    },
  };
  const loop = createBackgroundLoop({ pass, intervalMs: HOUR_MS, nudge: () => {}, logger: { error: () => {} }, ...(nudgeDelayMs ? { nudgeDelayMs } : {}) });
  return { loop, runs: () => runs };
}

describe('createBackgroundLoop nudges', () => {
  it('runs once for the nudges of one event-loop turn, after that turn', async () => {
    const { loop, runs } = countingLoop();
    loop.start();
    await nextTurn();
    expect(runs()).toBe(1);
    for (let i = 0; i < 10; i++) loop.nudge();
    expect(runs()).toBe(1);
    await nextTurn();
    await nextTurn();
    expect(runs()).toBe(2);
    await loop.stop();
  });

  it('gathers the nudges of its delay into one run', async () => {
    const { loop, runs } = countingLoop(50);
    loop.start();
    await nextTurn();
    loop.nudge();
    await sleep(10);
    loop.nudge();
    await nextTurn();
    expect(runs()).toBe(1);
    await sleep(100);
    expect(runs()).toBe(2);
    await loop.stop();
  });

  it('drops a pending nudge when stopped', async () => {
    const { loop, runs } = countingLoop(20);
    loop.start();
    await nextTurn();
    loop.nudge();
    await loop.stop();
    await sleep(50);
    expect(runs()).toBe(1);
  });
});
