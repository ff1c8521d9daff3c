/**
 * The one place that turns failures into the contract's error body
 * `{"status_code","error_code","message"[,"errors"]}`: core errors, request validation (zod) failures, Hono's own
 * HTTP exceptions (malformed JSON, unsupported media type) and anything unexpected (a generic 500, logged).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { isDatabaseUnavailableError } from '../db/db-errors';
import { ConflictError, ForbiddenError, KurokoError, NotFoundError, ScriptError, ValidationError } from '../core/errors';
import type { FieldProblem } from '../core/errors';
import { DatabaseResumingError, isDatabaseResuming, RESUME_RETRY_AFTER_SECONDS } from '../db/dialects/data-api-retry';
import type { Logger } from '../core/ports';

export const HTTP_STATUS = {
  ok: 200,
  created: 201,
  noContent: 204,
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  payloadTooLarge: 413,
  unsupportedMediaType: 415,
  unprocessable: 422,
  internal: 500,
  unavailable: 503,
} as const;

/** Kuroko2's error codes, plus ours for the statuses it never sent. */
export const ERROR_CODE: Readonly<Record<number, string>> = {
  [HTTP_STATUS.badRequest]: 'bad_request',
  [HTTP_STATUS.unauthorized]: 'unauthorized',
  [HTTP_STATUS.forbidden]: 'forbidden',
  [HTTP_STATUS.notFound]: 'record_not_found',
  [HTTP_STATUS.conflict]: 'conflict',
  [HTTP_STATUS.payloadTooLarge]: 'payload_too_large',
  [HTTP_STATUS.unsupportedMediaType]: 'unsupported_media_type',
  [HTTP_STATUS.unprocessable]: 'unprocessable_entity',
  429: 'too_many_requests',
  [HTTP_STATUS.internal]: 'internal_server_error',
  [HTTP_STATUS.unavailable]: 'service_unavailable',
};

/** The error_code of a status none of the above covers. */
export const FALLBACK_ERROR_CODE = 'error';

/** One entry of `errors`: the field (dotted path), the message, and the place in a script. */
export interface ErrorItem {
  field?: string;
  message: string;
  line?: number;
  column?: number;
}

export interface ErrorBody {
  status_code: number;
  error_code: string;
  message: string;
  errors?: ErrorItem[];
}

/** What the app logs through; Powertools' Logger fits, and so does a console shim. */
export type HttpLogger = Logger;

/** An HTTP failure with the contract's body; thrown by handlers and middleware, rendered by `errorResponse`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly items: readonly ErrorItem[] = [],
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The contract's body; `errors` only when there is more than one problem. */
export function errorBody(status: number, message: string, items: readonly ErrorItem[] = []): ErrorBody {
  return {
    status_code: status,
    error_code: ERROR_CODE[status] ?? FALLBACK_ERROR_CODE,
    message,
    ...(items.length > 1 ? { errors: [...items] } : {}),
  };
}

function itemOf(problem: FieldProblem): ErrorItem {
  return {
    field: problem.field,
    message: problem.message,
    ...(problem.line !== undefined ? { line: problem.line } : {}),
    ...(problem.column !== undefined ? { column: problem.column } : {}),
  };
}

/** Seconds a client is told to wait when the database cannot be reached (a MariaDB restart takes a few). */
const DATABASE_RETRY_AFTER_SECONDS = '5';

/** Maps a thrown value to an ApiError: expected failures keep their message, anything else becomes a generic 500. */
export function toApiError(error: unknown, logger: HttpLogger): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof HTTPException) {
    // Hono's own: malformed JSON (400), unsupported media type (415), payload too large (413).
    return new ApiError(error.status as ContentfulStatusCode, error.message || 'bad request');
  }
  if (isDatabaseUnavailableError(error)) {
    // The database is down or restarting (self-hosted MariaDB): not the request's fault, worth a retry.
    logger.warn('database unavailable', { error: error instanceof Error ? error.message : String(error) });
    return new ApiError(HTTP_STATUS.unavailable, 'the database is unavailable; retry later', [], { 'Retry-After': DATABASE_RETRY_AFTER_SECONDS });
  }
  if (error instanceof NotFoundError) return new ApiError(HTTP_STATUS.notFound, error.message);
  if (error instanceof ConflictError) return new ApiError(HTTP_STATUS.conflict, error.message);
  if (error instanceof ForbiddenError) return new ApiError(HTTP_STATUS.forbidden, error.message);
  if (error instanceof ScriptError) {
    const items = error.problems.map((p) => ({ field: 'script', line: p.line, column: p.column, message: p.message }));
    // A single problem has no `errors` list, so its place goes into the message.
    return new ApiError(HTTP_STATUS.unprocessable, `script: ${error.message}`, items);
  }
  if (error instanceof ValidationError) return new ApiError(HTTP_STATUS.unprocessable, error.message, error.problems.map(itemOf));
  if (isDatabaseResuming(error)) {
    // Aurora was paused and is still resuming after the request's wait (app/lambda/lambda-resume.ts).
    const retryAfter = error instanceof DatabaseResumingError ? error.retryAfterSeconds : RESUME_RETRY_AFTER_SECONDS;
    logger.warn('the database is still resuming', { error: error instanceof Error ? error.message : String(error) });
    return new ApiError(HTTP_STATUS.unavailable, 'the database is resuming from an automatic pause; retry shortly', [], {
      'Retry-After': String(retryAfter),
    });
  }
  logger.error('request failed', {
    error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
    code: error instanceof KurokoError ? error.code : undefined,
  });
  return new ApiError(HTTP_STATUS.internal, 'internal server error');
}

/** Renders an ApiError as the contract's JSON body. */
export function errorResponse(c: Context, error: ApiError): Response {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json(errorBody(error.status, error.message, error.items), error.status);
}

/** The message a zod schema gives a missing required value, so the hook can tell "missing" (422) from "wrong type" (400). */
export const REQUIRED_MESSAGE = 'is required';

/** Issue codes that say "this is not the kind of value expected" rather than "this value breaks a rule". */
const TYPE_ISSUES: ReadonlySet<string> = new Set(['invalid_type', 'invalid_union', 'invalid_element', 'unrecognized_keys']);

function pathOf(issue: z.core.$ZodIssue): string {
  return issue.path.map(String).join('.');
}

/**
 * Turns a request validation failure into an ApiError: wrong types and any bad path, query or header value are 400
 * bad_request; well-typed body values that break a rule (too long, out of range, a missing required field) are
 * 422 unprocessable_entity, like the other "well-formed but invalid" input.
 */
export function validationFailure(target: string, error: z.ZodError): ApiError {
  const issues = error.issues;
  const wrongType = target !== 'json' || issues.some((i) => TYPE_ISSUES.has(i.code) && i.message !== REQUIRED_MESSAGE);
  const items = issues.map((i) => {
    const field = pathOf(i);
    return field === '' ? { message: i.message } : { field, message: i.message };
  });
  const where = target === 'json' ? 'body' : target;
  const message = items.map((i) => (i.field ? `${i.field}: ${i.message}` : `${where}: ${i.message}`)).join('; ');
  return new ApiError(wrongType ? HTTP_STATUS.badRequest : HTTP_STATUS.unprocessable, message, items);
}
