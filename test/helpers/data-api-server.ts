/**
 * A local stand-in for the RDS Data API, backed by MariaDB, so the real `@aws-sdk/client-rds-data` client and
 * kysely-data-api's driver are exercised in tests.
 *
 * It speaks the REST-JSON operations the SDK sends (POST /Execute, /BatchExecute, /BeginTransaction,
 * /CommitTransaction, /RollbackTransaction), converts `:name` parameters to positional ones, and answers like
 * the service does for Aurora MySQL: typed fields (`longValue`, `stringValue`, `doubleValue`, `booleanValue` for
 * TINYINT(1)/BIT(1), `blobValue`, `isNull`), DATETIME as 'YYYY-MM-DD HH:MM:SS.fff' strings, `columnMetadata` only
 * when `includeResultMetadata`, `numberOfRecordsUpdated`, `generatedFields`, transactions pinned to one connection
 * by `transactionId`, and SQL errors as `400 DatabaseErrorException` carrying "Database error code: N. Message: ..."
 * (what Serverless v2 and provisioned clusters answer; BadRequestException is Serverless v1's).
 *
 * It is strict by default, like the service (each switchable through `limits`):
 * - 1 MiB of result data per call and 64 KB per row, answered with AWS's error texts
 *   (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html,
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html);
 * - at most 65,536 characters of `sql` (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html);
 * - one statement at a time per transaction ("Transaction is still running a query") and no multi-statements
 *   (data-api.troubleshooting.html);
 * - a transaction expires 3 minutes after its last call (data-api.troubleshooting.html);
 * - a call times out after 45 s and its statement is stopped unless `continueAfterTimeout`
 *   (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.html).
 * On request only: an auto-paused cluster (`autoPause`, `pause()`): the first call after the idle period starts a
 * resume and every call answers `400 DatabaseResumingException` until it ends
 * (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html); and
 * injected throttling (`ThrottlingException`) and server errors (`ServiceUnavailableError` 503,
 * `InternalServerErrorException` 500) at a given rate (`faults`).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool } from 'mysql2/promise';
import type { FieldPacket, Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise';

/** The service's documented limits; each can be switched off (`false`) or, for tests, set lower. */
export interface DataApiLimits {
  /** Result data per call: 1 MiB ("Database response exceeded size limit"). */
  maxResponseBytes: number | false;
  /** Bytes of one row of a result set: 64 KB ("Packet for query is too large"). */
  maxRowBytes: number | false;
  /** Characters of `sql`: 65,536. */
  maxSqlLength: number | false;
  /** Bytes of one request's body (SQL, parameters and the JSON around them): 4 MiB. */
  maxRequestBytes: number | false;
  /** A call on a transaction that is running another answers "Transaction is still running a query". */
  oneStatementPerTransaction: boolean;
  /** `select 1; select 2` is refused. */
  rejectMultiStatements: boolean;
}

export interface DataApiAutoPause {
  /** The cluster pauses after this long without a call (and with no open transaction); 0 pauses at once. */
  idleMs: number;
  /** A resume takes this long; meanwhile every call answers DatabaseResumingException. */
  resumeMs: number;
}

export interface DataApiFaults {
  /** Share of calls answered `ThrottlingException` (400, "Rate exceeded"), before anything runs. */
  throttleRate?: number;
  /** Share of calls answered 503 ServiceUnavailableError / 500 InternalServerErrorException, before anything runs. */
  serverErrorRate?: number;
  /** Share of calls whose connection is dropped before anything runs (a call that timed out on its way). */
  dropRate?: number;
  /**
   * Share of calls that run (a statement, a commit) and whose connection is then dropped instead of answered: the
   * client sees an error for a change the database made (a timeout after the commit).
   */
  lostAnswerRate?: number;
  /** The random source (tests pass a deterministic one). */
  random?: () => number;
}

export interface DataApiServerOptions {
  /** MariaDB/MySQL to run statements on; its path names the default database. */
  mysqlUrl: string;
  /** Artificial delay before every call, to mimic the service's per-call cost in benches. */
  latencyMs?: number;
  resourceArn?: string;
  secretArn?: string;
  /**
   * More secrets it accepts, each signing in as its own MySQL user, as the Data API signs in with the username and
   * password of the secret a call names (the agent's and the runtime user's secrets; `secretArn` stays the URL's user).
   */
  userSecrets?: Readonly<Record<string, { username: string; password: string }>>;
  /** A transaction idle this long is rolled back, like the service's 3-minute timeout. */
  transactionIdleTimeoutMs?: number;
  /**
   * MariaDB connections per database (10 by default). The service keeps its own pool in front of the cluster, sized by
   * the cluster's max_connections, so a load of many clients (a bench's 50 agents) needs more than a test does.
   */
  poolSize?: number;
  /** A call's statement is stopped after this long and the call answers StatementTimeoutException (45 s). */
  statementTimeoutMs?: number;
  /** The limits; all on by default (strict), `false` turns them all off, an object overrides some. */
  limits?: Partial<DataApiLimits> | false;
  /** Auto-pause after an idle period; off unless asked (a paused cluster needs an idle period first). */
  autoPause?: DataApiAutoPause;
  /** Injected throttling and server errors; none by default. */
  faults?: DataApiFaults;
  /** The clock of pauses and resumes (a bench's simulated one); Date.now by default. */
  now?: () => number;
  /** Told of every call once answered (benches build per-call timelines from it). */
  onCall?: (call: DataApiCall) => void;
  /** Awaited before each call runs, once its body is read (tests hold one call until another has arrived). */
  gate?: (call: { operation: string; sql?: string; parameters?: readonly SqlParameter[] }) => Promise<void>;
  /**
   * Asked after each call ran: true drops the connection instead of answering, so the call took effect and its
   * caller sees a network error (a commit whose answer never came back). `faults.lostAnswerRate` does it at random.
   */
  loseAnswer?: (call: { operation: string; sql?: string }) => boolean;
}

/** One call as the stand-in served it, for timelines: wall-clock ms (fractional) from arrival to answer. */
export interface DataApiCall {
  /** `Execute`, `BatchExecute`, `BeginTransaction`, `CommitTransaction`, `RollbackTransaction`. */
  operation: string;
  /**
   * Who called, when the client's endpoint has a path (`<endpoint>/processor` sends `/processor/Execute`): the path
   * before the operation, so one stand-in can tell its callers apart.
   */
  caller?: string;
  sql?: string;
  inTransaction: boolean;
  startedAt: number;
  endedAt: number;
  /** The error type answered, if any. */
  error?: string;
}

/** The state of the simulated cluster. */
export type DataApiClusterState = 'available' | 'paused' | 'resuming';

export interface DataApiServer {
  /** `http://127.0.0.1:<port>`, for the SDK client's `endpoint`. */
  endpoint: string;
  resourceArn: string;
  secretArn: string;
  /** SQL statements run since start (or the last reset): one per Execute, one per BatchExecute parameter set. */
  statementCount(): number;
  /** Data API calls of any kind since start (or the last reset), transactions' begin/commit/rollback included. */
  callCount(): number;
  resetCounts(): void;
  /** Open transactions, for leak checks. */
  openTransactions(): number;
  /** Pauses the cluster now; the next call starts a resume of `resumeMs` (the autoPause one by default). */
  pause(resumeMs?: number): void;
  /** Where the cluster is, at the server's clock. */
  clusterState(): DataApiClusterState;
  /** Resumes started since start. */
  resumeCount(): number;
  /** Calls answered DatabaseResumingException since start. */
  resumingAnswers(): number;
  /** Replaces the injected faults (none: `{}`). */
  setFaults(faults: DataApiFaults): void;
  /**
   * Cuts the caller off after `calls` more calls: from then on every call's connection is dropped unanswered, as when
   * a Lambda is stopped mid-pass, until `restore()`. Open transactions stay open until they expire.
   */
  cutOffAfter(calls: number): void;
  restore(): void;
  /** The largest result (bytes of result data of one call) and row seen since start, for benches. */
  largest(): { responseBytes: number; rowBytes: number };
  close(): Promise<void>;
}

export const DATA_API_LIMITS: DataApiLimits = {
  maxResponseBytes: 1024 * 1024,
  maxRowBytes: 64 * 1024,
  maxSqlLength: 65_536,
  maxRequestBytes: 4 * 1024 * 1024,
  oneStatementPerTransaction: true,
  rejectMultiStatements: true,
};
const NO_LIMITS: DataApiLimits = {
  maxResponseBytes: false,
  maxRowBytes: false,
  maxSqlLength: false,
  maxRequestBytes: false,
  oneStatementPerTransaction: false,
  rejectMultiStatements: false,
};

const DEFAULT_RESOURCE_ARN = 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko-test';
const DEFAULT_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-test-AbCdEf';
const TRANSACTION_IDLE_TIMEOUT_MS = 3 * 60 * 1000;
const STATEMENT_TIMEOUT_MS = 45_000;
const TRANSACTION_ID_BYTES = 96;
const POOL_SIZE = 10;
const HTTP_BAD_REQUEST = 400;
const HTTP_NOT_FOUND = 404;
const HTTP_INTERNAL_ERROR = 500;
const HTTP_SERVICE_UNAVAILABLE = 503;

/** mysql2 column type codes (protocol constants). */
const T = {
  DECIMAL: 0x00, TINY: 0x01, SHORT: 0x02, LONG: 0x03, FLOAT: 0x04, DOUBLE: 0x05, NULL: 0x06, TIMESTAMP: 0x07,
  LONGLONG: 0x08, INT24: 0x09, DATE: 0x0a, TIME: 0x0b, DATETIME: 0x0c, YEAR: 0x0d, NEWDATE: 0x0e, BIT: 0x10,
  JSON: 0xf5, NEWDECIMAL: 0xf6,
} as const;
const BINARY_CHARSET = 63;
const UNSIGNED_FLAG = 32;
const AUTO_INCREMENT_FLAG = 512;
const NOT_NULL_FLAG = 1;

/** java.sql.Types codes and MySQL Connector/J type names, which the service reports in columnMetadata. */
const JDBC = {
  BIT: -7, TINYINT: -6, SMALLINT: 5, INTEGER: 4, BIGINT: -5, REAL: 7, DOUBLE: 8, DECIMAL: 3, DATE: 91, TIME: 92,
  TIMESTAMP: 93, VARCHAR: 12, LONGVARCHAR: -1, VARBINARY: -3, LONGVARBINARY: -4, NULL: 0,
} as const;

type Field =
  | { isNull: true }
  | { booleanValue: boolean }
  | { longValue: number }
  | { doubleValue: number }
  | { stringValue: string }
  | { blobValue: string };

interface SqlParameter {
  name?: string;
  value?: Record<string, unknown>;
  typeHint?: string;
}

interface ExecuteRequest {
  resourceArn?: string;
  secretArn?: string;
  sql?: string;
  database?: string;
  parameters?: SqlParameter[];
  parameterSets?: SqlParameter[][];
  transactionId?: string;
  continueAfterTimeout?: boolean;
  includeResultMetadata?: boolean;
  formatRecordsAs?: string;
  resultSetOptions?: { decimalReturnType?: string; longReturnType?: string };
}

/** An error answered as the service would: HTTP status, error type header, message. */
class DataApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** An error of the database itself, as Serverless v2 and provisioned clusters answer it. */
function databaseError(message: string): DataApiError {
  return new DataApiError(HTTP_BAD_REQUEST, 'DatabaseErrorException', message);
}

interface MysqlDriverError {
  errno?: number;
  sqlMessage?: string;
}

function asDataApiError(err: unknown): DataApiError {
  if (err instanceof DataApiError) return err;
  const e = err as MysqlDriverError;
  if (typeof e?.errno === 'number' && typeof e.sqlMessage === 'string') {
    return databaseError(`Database error code: ${e.errno}. Message: ${e.sqlMessage}`);
  }
  return new DataApiError(HTTP_INTERNAL_ERROR, 'InternalServerErrorException', err instanceof Error ? err.message : String(err));
}

/**
 * Where the quoted string, quoted identifier or comment that starts at `i` ends (the index after it), or undefined
 * when none starts there. Shared by the placeholder rewrite and the multi-statement check so both skip the same spans.
 */
function skipLiteral(sql: string, i: number): number | undefined {
  const ch = sql[i];
  if (ch === "'" || ch === '"' || ch === '`') {
    let j = i + 1;
    while (j < sql.length) {
      if (sql[j] === '\\' && ch !== '`') j += 2;
      else if (sql[j] === ch && sql[j + 1] === ch) j += 2;
      else if (sql[j] === ch) break;
      else j++;
    }
    return Math.min(j + 1, sql.length);
  }
  if ((ch === '-' && sql[i + 1] === '-') || ch === '#') {
    const end = sql.indexOf('\n', i);
    return end < 0 ? sql.length : end;
  }
  if (ch === '/' && sql[i + 1] === '*') {
    const end = sql.indexOf('*/', i + 2);
    return end < 0 ? sql.length : end + 2;
  }
  return undefined;
}

/**
 * Rewrites `:name` placeholders as `?` with their values in order, skipping quoted strings, quoted identifiers
 * and comments (so '12:30' and `a:b` stay as they are).
 */
export function convertNamedParameters(sql: string, values: ReadonlyMap<string, unknown>): { sql: string; values: unknown[] } {
  let out = '';
  const ordered: unknown[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] as string;
    const skipped = skipLiteral(sql, i);
    if (skipped !== undefined) {
      out += sql.slice(i, skipped);
      i = skipped;
    } else if (ch === ':' && /[A-Za-z0-9_]/.test(sql[i + 1] ?? '') && sql[i - 1] !== ':') {
      const match = /^[A-Za-z0-9_]+/.exec(sql.slice(i + 1));
      const name = match?.[0] ?? '';
      if (!values.has(name)) throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', `No value specified for parameter: ${name}`);
      ordered.push(values.get(name));
      out += '?';
      i += 1 + name.length;
    } else {
      out += ch;
      i++;
    }
  }
  return { sql: out, values: ordered };
}

/** True when `sql` holds more than one statement: a `;` outside quotes and comments followed by more than blanks. */
export function hasMultipleStatements(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    const skipped = skipLiteral(sql, i);
    if (skipped !== undefined) {
      i = skipped;
    } else if (sql[i] === ';') {
      const rest = sql.slice(i + 1).replace(/(--|#)[^\n]*|\/\*[\s\S]*?\*\//g, '');
      if (rest.replace(/[\s;]/g, '') !== '') return true;
      i++;
    } else {
      i++;
    }
  }
  return false;
}

/** Decodes one Data API parameter into a value mysql2 binds the way Aurora would coerce it. */
function parameterValue(p: SqlParameter): unknown {
  const v = p.value ?? {};
  if (v.isNull === true) return null;
  if ('booleanValue' in v) return v.booleanValue === true;
  if ('longValue' in v) return Number(v.longValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('blobValue' in v) return Buffer.from(String(v.blobValue), 'base64');
  if ('stringValue' in v) return String(v.stringValue);
  if ('arrayValue' in v) throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', 'Array parameters are not supported.');
  return null;
}

function parameterMap(parameters: readonly SqlParameter[] | undefined): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (const p of parameters ?? []) {
    if (!p.name) throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', 'Parameter name is required');
    map.set(p.name, parameterValue(p));
  }
  return map;
}

/** 'YYYY-MM-DD HH:MM:SS[.ffffff]' cut to milliseconds, as the service returns DATETIME/TIMESTAMP. */
function trimToMillis(text: string): string {
  const match = /^([^.]+)(\.\d{1,3})?/.exec(text);
  return match ? `${match[1]}${match[2] ?? ''}` : text;
}

function flagsOf(f: FieldPacket): number {
  return typeof f.flags === 'number' ? f.flags : 0;
}

function isBooleanColumn(f: FieldPacket): boolean {
  return (f.columnType === T.TINY || f.columnType === T.BIT) && f.columnLength === 1;
}

/** One column value (raw bytes from mysql2 with typeCast off) as a typed Data API field. */
function toField(f: FieldPacket, raw: Buffer | null, options: ExecuteRequest['resultSetOptions']): Field {
  if (raw === null) return { isNull: true };
  const text = () => raw.toString('utf8');
  if (isBooleanColumn(f)) return { booleanValue: f.columnType === T.BIT ? raw[0] !== 0 : Number(text()) !== 0 };
  switch (f.columnType) {
    case T.TINY:
    case T.SHORT:
    case T.LONG:
    case T.INT24:
    case T.LONGLONG:
    case T.YEAR:
      return options?.longReturnType === 'STRING' ? { stringValue: text() } : { longValue: Number(text()) };
    case T.FLOAT:
    case T.DOUBLE:
      return { doubleValue: Number(text()) };
    case T.DECIMAL:
    case T.NEWDECIMAL:
      return options?.decimalReturnType === 'DOUBLE_OR_LONG' ? { doubleValue: Number(text()) } : { stringValue: text() };
    case T.DATETIME:
    case T.TIMESTAMP:
      return { stringValue: trimToMillis(text()) };
    case T.BIT:
      return { longValue: raw.reduce((acc, byte) => acc * 256 + byte, 0) };
    case T.JSON:
      return { stringValue: text() };
    default:
      return f.characterSet === BINARY_CHARSET ? { blobValue: raw.toString('base64') } : { stringValue: text() };
  }
}

function jdbcType(f: FieldPacket): { type: number; typeName: string } {
  if (isBooleanColumn(f)) return { type: JDBC.BIT, typeName: 'BIT' };
  const binary = f.characterSet === BINARY_CHARSET;
  switch (f.columnType) {
    case T.TINY: return { type: JDBC.TINYINT, typeName: 'TINYINT' };
    case T.SHORT: return { type: JDBC.SMALLINT, typeName: 'SMALLINT' };
    case T.LONG: case T.INT24: return { type: JDBC.INTEGER, typeName: 'INT' };
    case T.LONGLONG: return { type: JDBC.BIGINT, typeName: 'BIGINT' };
    case T.FLOAT: return { type: JDBC.REAL, typeName: 'FLOAT' };
    case T.DOUBLE: return { type: JDBC.DOUBLE, typeName: 'DOUBLE' };
    case T.DECIMAL: case T.NEWDECIMAL: return { type: JDBC.DECIMAL, typeName: 'DECIMAL' };
    case T.DATE: case T.NEWDATE: return { type: JDBC.DATE, typeName: 'DATE' };
    case T.TIME: return { type: JDBC.TIME, typeName: 'TIME' };
    case T.DATETIME: return { type: JDBC.TIMESTAMP, typeName: 'DATETIME' };
    case T.TIMESTAMP: return { type: JDBC.TIMESTAMP, typeName: 'TIMESTAMP' };
    case T.JSON: return { type: JDBC.LONGVARCHAR, typeName: 'JSON' };
    case T.NULL: return { type: JDBC.NULL, typeName: 'NULL' };
    default:
      return binary ? { type: JDBC.LONGVARBINARY, typeName: 'BLOB' } : { type: JDBC.VARCHAR, typeName: 'VARCHAR' };
  }
}

function columnMetadata(f: FieldPacket) {
  const flags = flagsOf(f);
  return {
    name: f.orgName || f.name,
    label: f.name,
    ...jdbcType(f),
    schemaName: '',
    tableName: f.orgTable ?? '',
    isAutoIncrement: (flags & AUTO_INCREMENT_FLAG) !== 0,
    isSigned: (flags & UNSIGNED_FLAG) === 0,
    isCurrency: false,
    isCaseSensitive: f.characterSet === BINARY_CHARSET,
    nullable: (flags & NOT_NULL_FLAG) !== 0 ? 0 : 1,
    precision: f.columnLength ?? 0,
    scale: f.decimals ?? 0,
    arrayBaseColumnType: 0,
  };
}

function plainValue(field: Field): unknown {
  const [key, value] = Object.entries(field)[0] as [string, unknown];
  return key === 'isNull' ? null : value;
}

interface Transaction {
  connection: PoolConnection;
  timer: NodeJS.Timeout;
  /** A call is running on it (the service refuses a second one). */
  busy: boolean;
}

/** A statement that outlived the timeout; `settled` ends when the database is done with it. */
class TimedOut extends DataApiError {
  constructor(
    readonly settled: Promise<unknown>,
    connectionId: number,
  ) {
    super(HTTP_BAD_REQUEST, 'StatementTimeoutException', 'The statement timed out.', { dbConnectionId: connectionId });
  }
}

const TOO_MANY_ROW_BYTES = 'Packet for query is too large';
const TOO_MANY_RESPONSE_BYTES = 'Database response exceeded size limit';
const STILL_RUNNING = 'Transaction is still running a query';
const MULTI_STATEMENTS = "Multi-statements aren't supported.";
const RESUMING_MESSAGE =
  'The Aurora DB instance is resuming after being auto-paused. Please wait a few seconds and try again.';

/** `/processor/Execute` -> caller `/processor`, operation `/Execute` (no caller: ''). */
function splitPath(url: string | undefined): { caller: string; operation: string } {
  const path = new URL(url ?? '/', 'http://localhost').pathname;
  const cut = path.lastIndexOf('/');
  return { caller: path.slice(0, cut), operation: path.slice(cut) };
}

/** Starts the stand-in on 127.0.0.1 on a free port. */
export async function startDataApiServer(options: DataApiServerOptions): Promise<DataApiServer> {
  const resourceArn = options.resourceArn ?? DEFAULT_RESOURCE_ARN;
  const secretArn = options.secretArn ?? DEFAULT_SECRET_ARN;
  const latencyMs = options.latencyMs ?? 0;
  const idleTimeoutMs = options.transactionIdleTimeoutMs ?? TRANSACTION_IDLE_TIMEOUT_MS;
  const statementTimeoutMs = options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
  const limits: DataApiLimits = options.limits === false ? NO_LIMITS : { ...DATA_API_LIMITS, ...options.limits };
  const now = options.now ?? (() => Date.now());
  let faults: DataApiFaults = options.faults ?? {};
  const baseUrl = new URL(options.mysqlUrl);
  const defaultDatabase = decodeURIComponent(baseUrl.pathname.replace(/^\//, ''));
  const pools = new Map<string, Pool>();
  const transactions = new Map<string, Transaction>();
  let statements = 0;
  let calls = 0;
  let largestResponse = 0;
  let largestRow = 0;
  // The simulated cluster: awake since lastCall, paused, or resuming until resumeEndsAt.
  let lastCall = now();
  let paused = false;
  let resumeEndsAt: number | undefined;
  let pausedResumeMs = options.autoPause?.resumeMs ?? 0;
  let resumes = 0;
  let resumingAnswers = 0;

  function state(at: number): DataApiClusterState {
    if (resumeEndsAt !== undefined) {
      if (at < resumeEndsAt) return 'resuming';
      // The resume ended: the cluster counts as active from then on.
      lastCall = Math.max(lastCall, resumeEndsAt);
      resumeEndsAt = undefined;
      paused = false;
    }
    if (paused) return 'paused';
    const auto = options.autoPause;
    if (auto && transactions.size === 0 && at - lastCall >= auto.idleMs) {
      paused = true;
      pausedResumeMs = auto.resumeMs;
      return 'paused';
    }
    return 'available';
  }

  /** Answers DatabaseResumingException while the cluster is paused (starting a resume) or resuming. */
  function checkAwake(): void {
    const at = now();
    const current = state(at);
    if (current === 'available') {
      lastCall = at;
      return;
    }
    if (current === 'paused') {
      resumes++;
      resumeEndsAt = at + pausedResumeMs;
    }
    resumingAnswers++;
    throw new DataApiError(HTTP_BAD_REQUEST, 'DatabaseResumingException', RESUMING_MESSAGE);
  }

  /** Throttling or a server error, drawn before anything runs. */
  function injectFault(): void {
    const random = faults.random ?? Math.random;
    if (faults.throttleRate && random() < faults.throttleRate) {
      throw new DataApiError(HTTP_BAD_REQUEST, 'ThrottlingException', 'Rate exceeded');
    }
    if (faults.serverErrorRate && random() < faults.serverErrorRate) {
      throw random() < 0.5
        ? new DataApiError(HTTP_SERVICE_UNAVAILABLE, 'ServiceUnavailableError', 'Service unavailable')
        : new DataApiError(HTTP_INTERNAL_ERROR, 'InternalServerErrorException', 'Internal server error');
    }
  }

  function poolFor(database: string | undefined, secret?: string): Pool {
    const name = database || defaultDatabase;
    const user = secret === undefined ? undefined : options.userSecrets?.[secret];
    const key = user === undefined ? name : `${name}\0${user.username}`;
    let pool = pools.get(key);
    if (!pool) {
      const url = new URL(baseUrl);
      url.pathname = `/${encodeURIComponent(name)}`;
      if (user !== undefined) {
        url.username = encodeURIComponent(user.username);
        url.password = encodeURIComponent(user.password);
      }
      pool = createPool({ uri: url.toString(), connectionLimit: options.poolSize ?? POOL_SIZE, timezone: 'Z', charset: 'utf8mb4_bin' });
      // Aurora's default time zone is UTC.
      pool.on('connection', (connection) => {
        connection.query("SET time_zone = '+00:00'");
      });
      pools.set(key, pool);
    }
    return pool;
  }

  function checkArns(body: ExecuteRequest): void {
    if (body.resourceArn !== resourceArn) {
      throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', `Invalid resource ARN: ${String(body.resourceArn)}`);
    }
    if (body.secretArn !== secretArn && options.userSecrets?.[String(body.secretArn)] === undefined) {
      throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', `Invalid secret ARN: ${String(body.secretArn)}`);
    }
  }

  function checkSql(body: ExecuteRequest): void {
    if (limits.maxSqlLength !== false && typeof body.sql === 'string' && body.sql.length > limits.maxSqlLength) {
      throw new DataApiError(
        HTTP_BAD_REQUEST,
        'BadRequestException',
        `1 validation error detected: Value at 'sql' failed to satisfy constraint: Member must have length less than or equal to ${limits.maxSqlLength}`,
      );
    }
    if (limits.rejectMultiStatements && typeof body.sql === 'string' && hasMultipleStatements(body.sql)) {
      throw databaseError(MULTI_STATEMENTS);
    }
  }

  function transaction(id: string): Transaction {
    const tx = transactions.get(id);
    if (!tx) throw new DataApiError(HTTP_NOT_FOUND, 'NotFoundException', `Transaction ${id} is not found`);
    if (tx.busy && limits.oneStatementPerTransaction) throw databaseError(STILL_RUNNING);
    tx.timer.refresh();
    return tx;
  }

  async function endTransaction(id: string, action: 'commit' | 'rollback'): Promise<void> {
    const tx = transaction(id);
    transactions.delete(id);
    clearTimeout(tx.timer);
    try {
      await (action === 'commit' ? tx.connection.commit() : tx.connection.rollback());
    } finally {
      tx.connection.release();
    }
  }

  /**
   * Runs `fn` on the transaction's connection (marked busy meanwhile), or on a pooled connection in autocommit mode.
   * A connection whose statement timed out is released (or its transaction freed) only once the database is done.
   */
  async function withConnection<R>(body: ExecuteRequest, fn: (c: PoolConnection) => Promise<R>): Promise<R> {
    if (body.transactionId) {
      const tx = transaction(body.transactionId);
      tx.busy = true;
      let settled: Promise<unknown> = Promise.resolve();
      try {
        return await fn(tx.connection);
      } catch (err) {
        if (err instanceof TimedOut) settled = err.settled;
        throw err;
      } finally {
        void settled.finally(() => {
          tx.busy = false;
          tx.timer.refresh();
        });
      }
    }
    const connection = await poolFor(body.database, body.secretArn).getConnection();
    let settled: Promise<unknown> = Promise.resolve();
    try {
      return await fn(connection);
    } catch (err) {
      if (err instanceof TimedOut) settled = err.settled;
      throw err;
    } finally {
      void settled.finally(() => connection.release());
    }
  }

  async function runStatement(connection: PoolConnection, body: ExecuteRequest, parameters: SqlParameter[] | undefined) {
    if (!body.sql) throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', 'SQL statement is required');
    const converted = convertNamedParameters(body.sql, parameterMap(parameters));
    statements++;
    const query = connection.query({
      sql: converted.sql,
      values: converted.values,
      rowsAsArray: true,
      typeCast: false,
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), statementTimeoutMs);
      timer.unref();
    });
    try {
      const outcome = await Promise.race([query, timeout]);
      if (outcome === 'timeout') {
        const settled = query.catch(() => undefined);
        // By default the statement stops when the call times out; continueAfterTimeout lets it finish.
        if (!body.continueAfterTimeout) {
          await poolFor(body.database).query(`KILL QUERY ${Number(connection.threadId)}`).catch(() => undefined);
        }
        throw new TimedOut(settled, connection.threadId);
      }
      const [result, fields] = outcome;
      return { result, fields: fields as FieldPacket[] | undefined };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Enforces the 64 KB per row and 1 MiB per call limits on the raw result data, as the database returned it. */
  function checkResultSize(rows: readonly (Buffer | null)[][]): void {
    let total = 0;
    for (const row of rows) {
      let bytes = 0;
      for (const raw of row) bytes += raw === null ? 0 : raw.length;
      largestRow = Math.max(largestRow, bytes);
      if (limits.maxRowBytes !== false && bytes > limits.maxRowBytes) {
        throw databaseError(`${TOO_MANY_ROW_BYTES} (${bytes} > ${limits.maxRowBytes}).`);
      }
      total += bytes;
    }
    largestResponse = Math.max(largestResponse, total);
    if (limits.maxResponseBytes !== false && total > limits.maxResponseBytes) {
      throw databaseError(`${TOO_MANY_RESPONSE_BYTES} (${total} > ${limits.maxResponseBytes}).`);
    }
  }

  async function execute(body: ExecuteRequest) {
    return withConnection(body, async (connection) => {
      const { result, fields } = await runStatement(connection, body, body.parameters);
      if (!Array.isArray(result) || !fields) {
        const header = result as ResultSetHeader;
        return {
          numberOfRecordsUpdated: header.affectedRows ?? 0,
          generatedFields: header.insertId ? [{ longValue: header.insertId }] : [],
        };
      }
      const rows = result as unknown as (Buffer | null)[][];
      checkResultSize(rows);
      const records = rows.map((row) => row.map((raw, i) => toField(fields[i] as FieldPacket, raw, body.resultSetOptions)));
      const response: Record<string, unknown> = { numberOfRecordsUpdated: 0 };
      if (body.formatRecordsAs === 'JSON') {
        response.formattedRecords = JSON.stringify(
          records.map((record) => Object.fromEntries(record.map((field, i) => [fields[i]?.name, plainValue(field)]))),
        );
      } else {
        response.records = records;
      }
      if (body.includeResultMetadata) response.columnMetadata = fields.map(columnMetadata);
      return response;
    });
  }

  async function batchExecute(body: ExecuteRequest) {
    const sets = body.parameterSets && body.parameterSets.length > 0 ? body.parameterSets : [[]];
    return withConnection(body, async (connection) => {
      const updateResults: { generatedFields: Field[] }[] = [];
      // Outside a transaction the batch commits as a whole, like one statement would.
      const own = !body.transactionId;
      if (own) await connection.beginTransaction();
      try {
        for (const set of sets) {
          const { result } = await runStatement(connection, body, set);
          const insertId = (result as ResultSetHeader).insertId;
          updateResults.push({ generatedFields: insertId ? [{ longValue: insertId }] : [] });
        }
        if (own) await connection.commit();
      } catch (err) {
        if (own) await connection.rollback().catch(() => undefined);
        throw err;
      }
      return { updateResults };
    });
  }

  async function beginTransaction(body: ExecuteRequest) {
    const connection = await poolFor(body.database, body.secretArn).getConnection();
    try {
      await connection.beginTransaction();
    } catch (err) {
      connection.release();
      throw err;
    }
    const transactionId = randomBytes(TRANSACTION_ID_BYTES).toString('base64');
    const timer = setTimeout(() => {
      const tx = transactions.get(transactionId);
      if (!tx) return;
      transactions.delete(transactionId);
      void tx.connection
        .rollback()
        .catch(() => undefined)
        .finally(() => tx.connection.release());
    }, idleTimeoutMs);
    timer.unref();
    transactions.set(transactionId, { connection, timer, busy: false });
    return { transactionId };
  }

  async function route(path: string, body: ExecuteRequest): Promise<unknown> {
    checkArns(body);
    checkAwake();
    injectFault();
    switch (path) {
      case '/Execute':
        checkSql(body);
        return execute(body);
      case '/BatchExecute':
        checkSql(body);
        return batchExecute(body);
      case '/BeginTransaction':
        return beginTransaction(body);
      case '/CommitTransaction':
        await endTransaction(String(body.transactionId), 'commit');
        return { transactionStatus: 'Transaction Committed' };
      case '/RollbackTransaction':
        await endTransaction(String(body.transactionId), 'rollback');
        return { transactionStatus: 'Rollback Complete' };
      default:
        throw new DataApiError(HTTP_NOT_FOUND, 'NotFoundException', `Unknown operation ${path}`);
    }
  }

  /** Calls left before the cut-off (cutOffAfter); undefined when not armed. */
  let callsBeforeCutOff: number | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls++;
    const startedAt = performance.timeOrigin + performance.now();
    let body: ExecuteRequest = {};
    let error: string | undefined;
    try {
      await serve(req, res, (b) => (body = b), (e) => (error = e));
    } finally {
      const { caller, operation } = splitPath(req.url);
      options.onCall?.({
        operation: operation.slice(1),
        ...(caller !== '' ? { caller: caller.slice(1) } : {}),
        ...(body.sql !== undefined ? { sql: body.sql } : {}),
        inTransaction: body.transactionId !== undefined,
        startedAt,
        endedAt: performance.timeOrigin + performance.now(),
        ...(error !== undefined ? { error } : {}),
      });
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse, parsed: (body: ExecuteRequest) => void, failed: (type: string) => void): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const random = faults.random ?? Math.random;
    if (callsBeforeCutOff !== undefined && callsBeforeCutOff-- <= 0) {
      req.socket.destroy();
      return;
    }
    if (faults.dropRate && random() < faults.dropRate) {
      req.socket.destroy();
      return;
    }
    try {
      if (req.method !== 'POST') throw new DataApiError(HTTP_NOT_FOUND, 'NotFoundException', 'Only POST is served');
      const raw = Buffer.concat(chunks);
      // "the maximum size of the HTTP request submitted through the Data API is 4 MiB. If the request exceeds this
      // limit, the Data API returns an error and doesn't process the request" (it counts the headers too; they are
      // a few hundred bytes here): https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_BatchExecuteStatement.html.
      // The page names no error; ours is a BadRequestException, the service's answer to every other invalid request.
      if (limits.maxRequestBytes !== false && raw.length > limits.maxRequestBytes) {
        throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', `Request size ${raw.length} exceeds the limit of ${limits.maxRequestBytes} bytes`);
      }
      const text = raw.toString('utf8');
      const body = (text ? JSON.parse(text) : {}) as ExecuteRequest;
      parsed(body);
      const call = { operation: splitPath(req.url).operation.slice(1), ...(body.sql !== undefined ? { sql: body.sql } : {}) };
      await options.gate?.({ ...call, ...(body.parameters !== undefined ? { parameters: body.parameters } : {}) });
      const result = await route(splitPath(req.url).operation, body);
      if ((faults.lostAnswerRate && random() < faults.lostAnswerRate) || options.loseAnswer?.(call)) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
    } catch (err) {
      const e = asDataApiError(err);
      failed(e.type);
      // restJson1: the SDK reads the error's name from this header and its members from the body.
      res.writeHead(e.status, { 'content-type': 'application/json', 'x-amzn-errortype': e.type });
      res.end(JSON.stringify({ message: e.message, ...e.extra }));
    }
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    resourceArn,
    secretArn,
    statementCount: () => statements,
    callCount: () => calls,
    resetCounts() {
      statements = 0;
      calls = 0;
    },
    openTransactions: () => transactions.size,
    pause(resumeMs) {
      paused = true;
      resumeEndsAt = undefined;
      pausedResumeMs = resumeMs ?? options.autoPause?.resumeMs ?? 0;
    },
    clusterState: () => state(now()),
    resumeCount: () => resumes,
    resumingAnswers: () => resumingAnswers,
    cutOffAfter(n) {
      callsBeforeCutOff = n;
    },
    restore() {
      callsBeforeCutOff = undefined;
    },
    setFaults(next) {
      faults = next;
    },
    largest: () => ({ responseBytes: largestResponse, rowBytes: largestRow }),
    async close() {
      for (const id of [...transactions.keys()]) await endTransaction(id, 'rollback').catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...pools.values()].map((pool) => pool.end()));
      pools.clear();
    },
  };
}
