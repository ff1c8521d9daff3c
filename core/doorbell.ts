/**
 * A doorbell (issue 18): a wake-up between processes that carries no state. Ringing says only "look at the
 * database now"; the database stays the only state, so a ring that is lost, doubled or late costs at most the
 * listener's fallback poll interval. On AWS the processor rings when a pass queued commands and the agents on EC2
 * listen (adapters/aws/sqs-doorbell.ts, a long-polled SQS queue), instead of reading the Data API every second.
 */
export interface Doorbell {
  /** Rings (count: how many commands were queued, so as many listeners may wake); may fail (the caller logs it and goes on: the listeners' fallback poll covers it). */
  ring(count?: number): Promise<void>;
  /**
   * Waits up to about maxWaitMs for a ring; resolves true when one came, false when the wait ended without one or
   * the signal aborted it. Rejects only when the bell cannot be reached.
   */
  listen(maxWaitMs: number, signal: AbortSignal): Promise<boolean>;
}
