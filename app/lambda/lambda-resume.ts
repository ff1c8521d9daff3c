/**
 * A paused Aurora cluster (0 ACU after `autoPauseMinutes` idle) resumes on the first Data API call, which answers
 * DatabaseResumingException, as does every call until the resume ends (about 15 s, sometimes 30). Each call waits it
 * out (db/dialects/data-api-retry.ts) for as long as its function can spare: the budgets below leave each function
 * time for its own work within its timeout (cdk/stacks/engine-stack.ts, workers-stack.ts). When the budget runs out
 * first, the API answers 503 with Retry-After (http/http-errors.ts), and a tick logs it and returns
 * normally: it is not a failed invocation and trips no alarm; the next minute's tick finds the cluster awake.
 * KUROKO_DB_RESUME_WAIT_SECONDS overrides a function's budget.
 */
import { DatabaseResumingError, isDatabaseResuming, RESUME_RETRY_AFTER_SECONDS } from '../../db/dialects/data-api-retry';
import type { LogPort } from './lambda-runtime';

const SECOND_MS = 1000;

/** How long each entry point waits for a resume, per Data API call. */
export const RESUME_WAIT_MS = {
  /** 29 s timeout, and API Gateway's own 30 s: a request waits 20 s, then answers 503. */
  api: 20 * SECOND_MS,
  /** scheduler, monitor, notifier: 30 s timeout. */
  tick: 20 * SECOND_MS,
  /** processor and provisioner: 60 s timeout. */
  longTick: 40 * SECOND_MS,
  /** The migrator custom resource: 5 min timeout; a failed deploy step is far costlier than a slow one. */
  migrator: 4 * 60 * SECOND_MS,
} as const;

/** What a tick returns when the database was still resuming at the end of its wait. */
export interface DatabaseResuming {
  databaseResuming: true;
  retryAfterSeconds: number;
}

/**
 * Runs a tick; if the database is still resuming when its wait ends, logs it and returns `DatabaseResuming`
 * instead of failing the invocation. Any other error is thrown as before.
 */
export async function tickUnlessResuming<T>(log: LogPort, name: string, tick: () => Promise<T>): Promise<T | DatabaseResuming> {
  try {
    return await tick();
  } catch (error) {
    if (!isDatabaseResuming(error)) throw error;
    log.warn(`${name}: the database is still resuming from an automatic pause; this tick is skipped`, {
      error: error instanceof Error ? error.message : String(error),
    });
    const retryAfterSeconds = error instanceof DatabaseResumingError ? error.retryAfterSeconds : RESUME_RETRY_AFTER_SECONDS;
    return { databaseResuming: true, retryAfterSeconds };
  }
}
