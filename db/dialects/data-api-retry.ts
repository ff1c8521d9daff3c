/**
 * How a Data API call waits out what the service answers while it cannot run it (one bounded backoff per call):
 * - `DatabaseResumingException`: the cluster was paused (0 ACU) and this call started its resume; the statement
 *   was cancelled, never run, so every call is retried until the resume ends (about 15 s, up to ~30 s) or the
 *   entry point's budget runs out, when it fails with DatabaseResumingError (the API answers 503, a tick skips);
 * - throttling: the call was refused before it ran, so it is retried too;
 * - server errors (5xx) and lost connections: the statement may or may not have run, so only calls that are safe
 *   to repeat are retried: a read outside a transaction, and BeginTransaction (a duplicate transaction is simply
 *   never used and expires). A write, any statement inside a transaction and a commit are not: the error reaches
 *   the caller, whose transaction is rolled back and retried whole (in a transaction, the commit is what counts).
 * The SDK's own retries are turned off for the clients db/connection.ts builds, so this is the only policy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KurokoError } from '../../core/errors';
import { backoffDelay } from '../../core/backoff';

/** What the wait costs: a resume is ~15 s; a Lambda entry point passes what its timeout leaves (see functions/). */
export interface DataApiRetryOptions {
  /** Longest total wait for one call (resume, throttling, safe 5xx retries together). */
  budgetMs: number;
  /** First pause between attempts; doubles up to maxDelayMs. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts for throttling and 5xx (a resume is bounded by the budget alone). */
  maxTransientAttempts?: number;
  /** Told of each retry (logs). */
  onRetry?: (event: DataApiRetryEvent) => void;
}

export interface DataApiRetryEvent {
  operation: string;
  reason: RetryReason;
  attempt: number;
  delayMs: number;
  error: string;
}

export type RetryReason = 'resuming' | 'throttled' | 'transient';

/** The default budget for processes other than Lambdas (servers, agents, the CLI). */
export const DEFAULT_RESUME_BUDGET_MS = 45_000;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 4_000;
const MAX_TRANSIENT_ATTEMPTS = 4;
const MAX_CAUSE_DEPTH = 5;
const HTTP_TOO_MANY_REQUESTS = 429;
const HTTP_SERVER_ERROR = 500;
/** What a client should wait before trying again once the budget is spent: a resume's typical length. */
export const RESUME_RETRY_AFTER_SECONDS = 15;

/**
 * The clock the waits use. Benches that simulate time replace `sleep` (and rely on a shifted Date for `now`);
 * nothing else should touch it.
 */
export const dataApiRetryClock = {
  now: (): number => Date.now(),
  sleep: (ms: number): Promise<void> => sleep(ms),
};

/** The cluster was still resuming when the caller's budget ran out; nothing ran. */
export class DatabaseResumingError extends KurokoError {
  readonly retryAfterSeconds = RESUME_RETRY_AFTER_SECONDS;
  constructor(waitedMs: number, options?: ErrorOptions) {
    super('external', `the database is resuming from an automatic pause (waited ${Math.round(waitedMs / 1000)} s)`, options);
  }
}

const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
]);
const TRANSIENT_NAMES = new Set([
  'InternalServerErrorException',
  'ServiceUnavailableError',
  'DatabaseUnavailableException',
  'TimeoutError',
  'RequestTimeout',
]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND']);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
}

function chain(err: unknown): ErrorShape[] {
  const out: ErrorShape[] = [];
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && out.length < MAX_CAUSE_DEPTH) {
    out.push(current as ErrorShape);
    current = (current as ErrorShape).cause;
  }
  return out;
}

/** True for the service's DatabaseResumingException, or for our error once the budget ran out, however wrapped. */
export function isDatabaseResuming(err: unknown): boolean {
  return chain(err).some((e) => e instanceof DatabaseResumingError || e.name === 'DatabaseResumingException');
}

/** Why an error may be retried, if it may. */
export function retryReason(err: unknown): RetryReason | undefined {
  const e = chain(err)[0];
  if (!e) return undefined;
  const name = typeof e.name === 'string' ? e.name : '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'DatabaseResumingException') return 'resuming';
  if (THROTTLING_NAMES.has(name) || status === HTTP_TOO_MANY_REQUESTS) return 'throttled';
  if (TRANSIENT_NAMES.has(name) || (status !== undefined && status >= HTTP_SERVER_ERROR)) return 'transient';
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'transient';
  return undefined;
}

/** The request of one call, as far as the policy needs it. */
export interface DataApiCallShape {
  operation: 'executeStatement' | 'beginTransaction' | 'commitTransaction' | 'rollbackTransaction';
  sql?: string;
  transactionId?: string;
}

const READ_ONLY = /^\s*(\(\s*)*(select|show|with|explain|describe|desc)\b/i;

/** True when running the call twice cannot change anything twice: a read outside a transaction, or a begin. */
export function safeToRepeat(call: DataApiCallShape): boolean {
  if (call.operation === 'beginTransaction') return true;
  if (call.operation !== 'executeStatement' || call.transactionId) return false;
  return typeof call.sql === 'string' && READ_ONLY.test(call.sql);
}

/** Runs `send` under the policy above. */
export async function withDataApiRetry<T>(call: DataApiCallShape, options: DataApiRetryOptions, send: () => Promise<T>): Promise<T> {
  const { now, sleep } = dataApiRetryClock;
  const started = now();
  const firstDelay = options.firstDelayMs ?? FIRST_DELAY_MS;
  const maxDelay = options.maxDelayMs ?? MAX_DELAY_MS;
  const maxTransient = options.maxTransientAttempts ?? MAX_TRANSIENT_ATTEMPTS;
  let transientAttempts = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const reason = retryReason(err);
      if (reason === undefined) throw err;
      if (reason !== 'resuming') {
        transientAttempts++;
        if (reason === 'transient' && !safeToRepeat(call)) throw err;
        if (transientAttempts >= maxTransient) throw err;
      }
      const base = backoffDelay({ baseMs: firstDelay, capMs: maxDelay }, attempt);
      // Equal jitter: callers that met the same pause do not all come back at the same instant.
      const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
      const waited = now() - started;
      if (waited + delayMs > options.budgetMs) {
        if (reason === 'resuming') throw new DatabaseResumingError(waited, { cause: err });
        throw err;
      }
      options.onRetry?.({
        operation: call.operation,
        reason,
        attempt,
        delayMs,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
      await sleep(delayMs);
    }
  }
}
