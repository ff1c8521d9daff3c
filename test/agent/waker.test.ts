/** The claim loop's and the heartbeat's interruptible sleep: a wake ends the sleep under way, or the next one. */
import { describe, expect, it } from 'vitest';
import { Waker } from '../../agent/waker';

const LONG_MS = 60_000;

describe('Waker', () => {
  it('ends a sleep under way at once when woken', async () => {
    const waker = new Waker();
    const sleeping = waker.sleep(LONG_MS);
    waker.wake();
    await expect(sleeping).resolves.toBeUndefined();
  });

  it('keeps a wake that came while nothing slept for the next sleep, once', async () => {
    const waker = new Waker();
    waker.wake();
    waker.wake();
    await waker.sleep(LONG_MS);
    const second = waker.sleep(20);
    let ended = false;
    void second.then(() => (ended = true));
    await Promise.resolve();
    expect(ended).toBe(false);
    await second;
  });
});
