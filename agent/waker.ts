/**
 * A sleep that can be cut short: the claim loop's poll wait (wake() is its nudge: a finished command, the local
 * mode's processor, a doorbell from outside) and the heartbeat's interval (woken when a stop begins and ends).
 * A plain timer and its resolve rather than an aborted timers/promises sleep: an abort builds an AbortError with
 * its stack, and the claim loop is woken once per finished command (a busy local agent, hundreds a second).
 */

export class Waker {
  #sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** A wake() that came while nobody slept: the next sleep returns at once. */
  #woken = false;

  /** Waits ms, or less if wake() is called meanwhile (or was called since the last sleep). */
  sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const sleeping = {
        resolve,
        timer: setTimeout(() => {
          if (this.#sleeping === sleeping) this.#sleeping = undefined;
          resolve();
        }, ms),
      };
      this.#sleeping = sleeping;
    });
  }

  /** Ends the current sleep, or the next one if none is under way. */
  wake(): void {
    const sleeping = this.#sleeping;
    if (sleeping === undefined) {
      this.#woken = true;
      return;
    }
    this.#sleeping = undefined;
    clearTimeout(sleeping.timer);
    sleeping.resolve();
  }
}
