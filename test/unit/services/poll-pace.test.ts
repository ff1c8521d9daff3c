import { describe, expect, it } from 'vitest';
import { nextPollMs } from '../../../core/poll-pace';

const pace = { hotMs: 2, hotWindowMs: 2_000, idleMs: 1_000 };

describe('nextPollMs (adaptive polling)', () => {
  it('looks every hotMs while work is in flight or was within the hot window', () => {
    expect(nextPollMs(pace, true, 60_000)).toBe(2);
    expect(nextPollMs(pace, false, 0)).toBe(2);
    expect(nextPollMs(pace, false, 1_999)).toBe(2);
  });

  it('then waits a twentieth of the idle time, up to the old fixed interval', () => {
    expect(nextPollMs(pace, false, 2_000)).toBe(100);
    expect(nextPollMs(pace, false, 10_000)).toBe(500);
    expect(nextPollMs(pace, false, 3_600_000)).toBe(1_000);
  });

  it('without the ramp (a doorbell wakes the process), waits the fixed interval as soon as the hot window ends', () => {
    const rung = { ...pace, ramp: false };
    expect(nextPollMs(rung, false, 1_999)).toBe(2);
    expect(nextPollMs(rung, true, 60_000)).toBe(2);
    expect(nextPollMs(rung, false, 2_000)).toBe(1_000);
  });

  it('keeps the fixed interval when adaptive polling is off', () => {
    expect(nextPollMs({ ...pace, hotMs: 0 }, true, 0)).toBe(1_000);
  });
});
