/**
 * Listens to a doorbell (core/doorbell.ts) and wakes the claim loop when it rings, handing it the executions the ring
 * names (hints it may claim by id first). A bell that cannot be reached is
 * retried with backoff; meanwhile, and whenever a ring is lost, the claim loop's own poll finds the work.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hintsOf, type Doorbell } from '../core/doorbell';
import { errorMessage } from '../core/errors';
import type { AgentLogger } from './agent-settings';
import { backoffMs } from './fenced-writes';

/** The longest single wait; SQS long polling allows at most 20 s. */
export const DOORBELL_LISTEN_MS = 20_000;
/** The first retry after a failed listen; it doubles up to the fallback poll interval. */
const RETRY_MS = 1_000;

export class DoorbellListener {
  readonly #stopping = new AbortController();
  #loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly doorbell: Doorbell,
    private readonly onRing: (hints: readonly number[]) => void,
    private readonly logger: AgentLogger,
    private readonly maxRetryMs: number,
  ) {}

  start(): void {
    this.#loop = this.#run();
  }

  /**
   * Aborts the listen under way. Does not wait for it: a client that ignores the abort must not hold up the drain,
   * and a ring that still arrives only wakes a claim loop that has already stopped.
   */
  stop(): void {
    this.#stopping.abort();
    void this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const heard = await this.doorbell.listen(DOORBELL_LISTEN_MS, signal);
        if (heard !== false) this.onRing(hintsOf(heard));
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        this.logger.warn('could not listen to the doorbell; the poll covers it', { error: errorMessage(error), failures });
        await sleep(Math.min(this.maxRetryMs, backoffMs(failures, RETRY_MS)), undefined, { signal }).catch(() => undefined);
      }
    }
  }
}
