/** Stable machine-readable error codes; API and CLI map them once at their edge. */
export const ERROR_CODES = {
  scriptInvalid: 'script_invalid',
  validation: 'validation',
  notFound: 'not_found',
  conflict: 'conflict',
  leaseLost: 'lease_lost',
  invalidTransition: 'invalid_transition',
  config: 'config',
  engine: 'engine',
  forbidden: 'forbidden',
  external: 'external',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** The base of every error this project throws on purpose. */
export class KurokoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem found in a script, located at a 1-based line and column. */
export interface ScriptProblem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** A script with one or more errors; `problems` holds every one of them. */
export class ScriptError extends KurokoError {
  readonly problems: readonly ScriptProblem[];
  constructor(problems: readonly ScriptProblem[]) {
    super(ERROR_CODES.scriptInvalid, problems.map((p) => `line ${p.line}, column ${p.column}: ${p.message}`).join('; '));
    this.problems = problems;
  }
}

/** One invalid field of some input. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
  /** Where in a script field the problem is (1-based), when the field is a script. */
  readonly line?: number;
  readonly column?: number;
}

/** Well-formed input that breaks a rule (a bad cron, a missing name, an unknown time zone). */
export class ValidationError extends KurokoError {
  readonly problems: readonly FieldProblem[];
  constructor(message: string, problems: readonly FieldProblem[] = []) {
    super(ERROR_CODES.validation, message);
    this.problems = problems;
  }
}

/** A record that does not exist. */
export class NotFoundError extends KurokoError {
  constructor(entity: string, id: number | string) {
    super(ERROR_CODES.notFound, `${entity} ${id} was not found`);
  }
}

/** The state of a record forbids the change (a delete while an instance works, a retry of a working token). */
export class ConflictError extends KurokoError {
  constructor(message: string) {
    super(ERROR_CODES.conflict, message);
  }
}

/** An action the caller may not take. */
export class ForbiddenError extends KurokoError {
  constructor(message: string) {
    super(ERROR_CODES.forbidden, message);
  }
}

/** A write by an agent whose claim (attempt) is no longer current. */
export class LeaseLostError extends KurokoError {
  constructor(executionId: number, attempt: number) {
    super(ERROR_CODES.leaseLost, `execution ${executionId} attempt ${attempt} no longer holds its lease`);
  }
}

/** A state change that the current state does not allow. */
export class InvalidTransitionError extends KurokoError {
  constructor(message: string) {
    super(ERROR_CODES.invalidTransition, message);
  }
}

/** Configuration that failed validation; the message lists every problem. */
export class ConfigError extends KurokoError {
  /** Every problem found, one line each (the message lists them too). */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(ERROR_CODES.config, `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/**
 * An error found while running a node (a missing sub-process definition, a bad option met at run time).
 * The engine turns it into a critical token and a canceled instance (Kuroko2's EngineError path).
 */
export class EngineError extends KurokoError {
  constructor(message: string, options?: ErrorOptions) {
    super(ERROR_CODES.engine, message, options);
  }
}

/** A call to an outside service (an AWS API) failed; `retryable` says whether trying again later may help. */
export class ExternalServiceError extends KurokoError {
  readonly service: string;
  readonly retryable: boolean;
  constructor(service: string, message: string, options: ErrorOptions & { retryable?: boolean } = {}) {
    super(ERROR_CODES.external, `${service}: ${message}`, options);
    this.service = service;
    this.retryable = options.retryable ?? false;
  }
}

/** The message of anything thrown: an Error's message, or the value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An Error as `Name: message` (for logs, where the class says what kind of failure it was), else the value as text. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
