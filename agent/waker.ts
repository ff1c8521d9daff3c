/**
 * A sleep that can be cut short: the claim loop's poll wait (wake() is its nudge: a finished command, the local
 * mode's processor, a doorbell from outside) and the heartbeat's interval (woken when a stop begins and ends).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class Waker {
  #sleeping: AbortController | undefined;
  /** A wake() that came while nobody slept: the next sleep returns at once. */
  #woken = false;

  /** Waits ms, or less if wake() is called meanwhile (or was called since the last sleep). */
  async sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    const sleeping = new AbortController();
    this.#sleeping = sleeping;
    try {
      await sleep(ms, undefined, { signal: sleeping.signal });
    } catch (error) {
      if (!sleeping.signal.aborted) throw error;
    } finally {
      if (this.#sleeping === sleeping) this.#sleeping = undefined;
    }
  }

  /** Ends the current sleep, or the next one if none is under way. */
  wake(): void {
    const sleeping = this.#sleeping;
    if (sleeping === undefined) {
      this.#woken = true;
      return;
    }
    this.#sleeping = undefined;
    sleeping.abort();
  }
}
