/**
 * The one exponential backoff: `baseMs` after the first failure, doubling per failure, never above `capMs`.
 * Retry loops (Data API calls, agent writes, log sink puts, notifier deliveries, background passes) all use it;
 * jitter, where a caller needs it, is applied by the caller with its own randomness port.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

/** Past 2^30 the product overflows any sane cap; doubling stops there. */
const MAX_EXPONENT = 30;

/** The delay before the next try after `failures` failures in a row (1 = the first failure). */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  const exponent = Math.min(Math.max(0, failures - 1), MAX_EXPONENT);
  return Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
}
