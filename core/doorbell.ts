/**
 * A doorbell (issue 18): a wake-up between processes that carries no state. Ringing says only "look at the
 * database now"; the database stays the only state, so a ring that is lost, doubled or late costs at most the
 * listener's fallback poll interval. On AWS the processor rings when a pass queued commands and the agents on EC2
 * listen (adapters/aws/sqs-doorbell.ts, a long-polled SQS queue), instead of reading the Data API every second.
 *
 * A ring may name the executions it was rung for (hints): the listener may claim those by id first, one round trip
 * instead of two. A hint is never trusted: the claim checks every row in the database, and a hint that names nothing
 * claimable (another agent's, another queue's, one claimed already) leads to the ordinary claim.
 */
export interface Doorbell {
  /**
   * Rings (count: how many commands were queued, so as many listeners may wake; hints: the ids of executions queued,
   * which the listeners may claim first); may fail (the caller logs it and goes on: the listeners' fallback poll covers it).
   */
  ring(count?: number, hints?: readonly number[]): Promise<void>;
  /**
   * Waits up to about maxWaitMs for a ring; resolves true (or the ring, with the ids it names) when one came, false
   * when the wait ended without one or the signal aborted it. Rejects only when the bell cannot be reached.
   */
  listen(maxWaitMs: number, signal: AbortSignal): Promise<boolean | DoorbellRing>;
}

/** A ring as heard: the executions it names (maybe none). */
export interface DoorbellRing {
  hints: readonly number[];
}

/** The hints of what listen() resolved: none for `true` or `false`. */
export const hintsOf = (heard: boolean | DoorbellRing): readonly number[] => (typeof heard === 'object' ? heard.hints : []);
