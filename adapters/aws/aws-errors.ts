/**
 * Turns AWS SDK errors into core errors at the adapter edge, so callers branch on KurokoError subclasses and
 * never on SDK exception names.
 */
import { ExternalServiceError, KurokoError, errorMessage } from '../../core/errors';

/** Exception names that mean "too many calls now"; a later attempt may pass. */
const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalError',
  'InternalFailure',
]);

/** The SDK exception name of an error, or undefined for anything else. */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('name' in error) || typeof error.name !== 'string') return undefined;
  return error.name;
}

/** True when the SDK or its name marks the error as worth retrying later. */
export function isRetryableAwsError(error: unknown): boolean {
  const name = awsErrorName(error);
  if (name !== undefined && THROTTLING_NAMES.has(name)) return true;
  if (typeof error === 'object' && error !== null && '$retryable' in error && error.$retryable) return true;
  const fault = typeof error === 'object' && error !== null && '$fault' in error ? error.$fault : undefined;
  return fault === 'server';
}

/** Wraps an SDK error as ExternalServiceError; core errors pass through unchanged. */
export function toExternalServiceError(service: string, action: string, error: unknown): KurokoError {
  if (error instanceof KurokoError) return error;
  const name = awsErrorName(error) ?? 'Error';
  const message = errorMessage(error);
  return new ExternalServiceError(service, `${action} failed (${name}): ${message}`, {
    cause: error,
    retryable: isRetryableAwsError(error),
  });
}
