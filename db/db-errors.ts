/**
 * Driver error recognition for the three dialects. mysql2 errors carry `code`/`errno`, better-sqlite3's
 * `SqliteError` carries an extended `code`, and the Data API returns an SDK exception (BadRequestException or
 * DatabaseErrorException) whose message embeds the MySQL error: "Database error code: 1062. Message: Duplicate
 * entry ...". Kysely passes driver errors through unchanged, sometimes wrapped as a `cause`.
 */
import { ConflictError } from '../core/errors';

const MYSQL_DUPLICATE_ENTRY = 1062;
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;
const MYSQL_DEADLOCK = 1213;
const SQLITE_UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);
const SQLITE_BUSY_CODES = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_LOCKED']);
const DATA_API_ERROR_NAMES = new Set(['BadRequestException', 'DatabaseErrorException']);
const MAX_CAUSE_DEPTH = 5;

interface DriverErrorShape {
  name?: unknown;
  code?: unknown;
  errno?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** The error and its `cause` chain, as plain records. */
function errorChain(err: unknown): DriverErrorShape[] {
  const chain: DriverErrorShape[] = [];
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && chain.length < MAX_CAUSE_DEPTH) {
    chain.push(current as DriverErrorShape);
    current = (current as DriverErrorShape).cause;
  }
  return chain;
}

/** The MySQL error number of a mysql2 error or of a Data API exception message, if any. */
function mysqlErrno(e: DriverErrorShape): number | undefined {
  if (typeof e.errno === 'number') return e.errno;
  if (typeof e.name === 'string' && DATA_API_ERROR_NAMES.has(e.name) && typeof e.message === 'string') {
    const match = /error code:?\s*(\d+)/i.exec(e.message);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** True when the error is a unique-key violation on any of the three drivers. */
export function isDuplicateKeyError(err: unknown): boolean {
  return errorChain(err).some((e) => {
    if (e.code === 'ER_DUP_ENTRY' || mysqlErrno(e) === MYSQL_DUPLICATE_ENTRY) return true;
    if (typeof e.code === 'string' && SQLITE_UNIQUE_CODES.has(e.code)) return true;
    return (
      typeof e.name === 'string' &&
      DATA_API_ERROR_NAMES.has(e.name) &&
      typeof e.message === 'string' &&
      /Duplicate entry/i.test(e.message)
    );
  });
}

/** True for a deadlock, a lock wait timeout or a busy SQLite file: the transaction may simply be run again. */
export function isRetryableLockError(err: unknown): boolean {
  return errorChain(err).some((e) => {
    const errno = mysqlErrno(e);
    if (errno === MYSQL_DEADLOCK || errno === MYSQL_LOCK_WAIT_TIMEOUT) return true;
    if (e.code === 'ER_LOCK_DEADLOCK' || e.code === 'ER_LOCK_WAIT_TIMEOUT') return true;
    if (typeof e.message === 'string' && /Deadlock found|Lock wait timeout exceeded/i.test(e.message)) return true;
    return typeof e.code === 'string' && SQLITE_BUSY_CODES.has(e.code);
  });
}

/** Attempts of a write that InnoDB chose as a deadlock victim (or that waited out a lock), by default. */
const LOCK_RETRIES = 5;
/** Upper bound of the first random pause after a lost lock race; later pauses grow linearly. */
const LOCK_BACKOFF_MS = 20;

/**
 * Runs `write` again when it lost a lock race (a deadlock victim is rolled back whole; MySQL's "How to Minimize and
 * Handle Deadlocks" says to re-issue it), up to `attempts` tries. The write must be safe to run again.
 */
export async function retryOnLock<T>(write: () => Promise<T>, attempts = LOCK_RETRIES): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!isRetryableLockError(error) || attempt >= attempts) throw error;
      // Two writers retrying in lockstep deadlock again: a short random pause puts them out of step.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * LOCK_BACKOFF_MS * attempt));
    }
  }
}

/** Translates a unique-key violation into a ConflictError with the given message; rethrows anything else. */
export function translateDuplicateKey(err: unknown, message: string): never {
  if (!isDuplicateKeyError(err)) throw err;
  const conflict = new ConflictError(message);
  conflict.cause = err;
  throw conflict;
}

/**
 * Codes of a database that cannot be reached or refuses connections for now (the server is down, restarting or
 * full): the request may succeed later. Socket errors from Node, mysql2's protocol errors, and MySQL's
 * too-many-connections, shutdown and killed-connection errors.
 */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
]);
/** The same as MySQL error numbers: 1040 too many connections, 1053 shutdown, 1203 user connections, 1927 killed. */
const UNAVAILABLE_ERRNOS: ReadonlySet<number> = new Set([1040, 1053, 1203, 1927]);

/** True when the database could not be reached or refused the connection for now (worth a 503 and a retry). */
export function isDatabaseUnavailableError(err: unknown): boolean {
  return errorChain(err).some((e) => {
    if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
    const errno = mysqlErrno(e);
    return errno !== undefined && UNAVAILABLE_ERRNOS.has(errno);
  });
}
