/**
 * Polls until a condition holds, with a deadline: the way tests wait for state instead of sleeping.
 */
export interface WaitForOptions {
  /** Give up after this long. */
  timeoutMs?: number;
  /** Pause between two checks. */
  intervalMs?: number;
  /** Says what was awaited, for the timeout message. */
  description?: string;
}

/**
 * Generous on purpose: a deadline only costs time when the condition never comes, and CI runs two test files at
 * once on two cores, where a few Data API round trips or a process start can take seconds.
 */
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_INTERVAL_MS = 20;

/**
 * Calls `predicate` until it returns a truthy value (which is returned) or the deadline passes (which throws,
 * with the last error the predicate threw, if any). A predicate that throws counts as "not yet".
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = options.description ?? 'condition';
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
