/**
 * A local stand-in for the RDS Data API, backed by MariaDB, so the real `@aws-sdk/client-rds-data` client and
 * kysely-data-api's driver are exercised in tests.
 *
 * It speaks the REST-JSON operations the SDK sends (POST /Execute, /BatchExecute, /BeginTransaction,
 * /CommitTransaction, /RollbackTransaction), converts `:name` parameters to positional ones, and answers like
 * the service does for Aurora MySQL: typed fields (`longValue`, `stringValue`, `doubleValue`, `booleanValue` for
 * TINYINT(1)/BIT(1), `blobValue`, `isNull`), DATETIME as 'YYYY-MM-DD HH:MM:SS.fff' strings, `columnMetadata` only
 * when `includeResultMetadata`, `numberOfRecordsUpdated`, `generatedFields`, transactions pinned to one connection
 * by `transactionId`, and errors as `400 BadRequestException` carrying "Database error code: N. Message: ...".
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPool } from 'mysql2/promise';
import type { FieldPacket, Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise';

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
}

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
  close(): Promise<void>;
}

const DEFAULT_RESOURCE_ARN = 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko-test';
const DEFAULT_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-test-AbCdEf';
const TRANSACTION_IDLE_TIMEOUT_MS = 3 * 60 * 1000;
const TRANSACTION_ID_BYTES = 96;
const POOL_SIZE = 10;
const HTTP_BAD_REQUEST = 400;
const HTTP_NOT_FOUND = 404;
const HTTP_INTERNAL_ERROR = 500;

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
  ) {
    super(message);
  }
}

interface MysqlDriverError {
  errno?: number;
  sqlMessage?: string;
}

function asDataApiError(err: unknown): DataApiError {
  if (err instanceof DataApiError) return err;
  const e = err as MysqlDriverError;
  if (typeof e?.errno === 'number' && typeof e.sqlMessage === 'string') {
    return new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', `Database error code: ${e.errno}. Message: ${e.sqlMessage}`);
  }
  return new DataApiError(HTTP_INTERNAL_ERROR, 'InternalServerErrorException', err instanceof Error ? err.message : String(err));
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
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === '\\' && ch !== '`') j += 2;
        else if (sql[j] === ch && sql[j + 1] === ch) j += 2;
        else if (sql[j] === ch) break;
        else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if ((ch === '-' && sql[i + 1] === '-') || ch === '#') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? sql.length : end + 2;
      out += sql.slice(i, stop);
      i = stop;
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
}

/** Starts the stand-in on 127.0.0.1 on a free port. */
export async function startDataApiServer(options: DataApiServerOptions): Promise<DataApiServer> {
  const resourceArn = options.resourceArn ?? DEFAULT_RESOURCE_ARN;
  const secretArn = options.secretArn ?? DEFAULT_SECRET_ARN;
  const latencyMs = options.latencyMs ?? 0;
  const idleTimeoutMs = options.transactionIdleTimeoutMs ?? TRANSACTION_IDLE_TIMEOUT_MS;
  const baseUrl = new URL(options.mysqlUrl);
  const defaultDatabase = decodeURIComponent(baseUrl.pathname.replace(/^\//, ''));
  const pools = new Map<string, Pool>();
  const transactions = new Map<string, Transaction>();
  let statements = 0;
  let calls = 0;

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
      pool = createPool({ uri: url.toString(), connectionLimit: POOL_SIZE, timezone: 'Z', charset: 'utf8mb4_bin' });
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

  function transaction(id: string): Transaction {
    const tx = transactions.get(id);
    if (!tx) throw new DataApiError(HTTP_NOT_FOUND, 'NotFoundException', `Transaction ${id} is not found`);
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

  /** Runs `fn` on the transaction's connection, or on a pooled connection in autocommit mode. */
  async function withConnection<R>(body: ExecuteRequest, fn: (c: PoolConnection) => Promise<R>): Promise<R> {
    if (body.transactionId) return fn(transaction(body.transactionId).connection);
    const connection = await poolFor(body.database, body.secretArn).getConnection();
    try {
      return await fn(connection);
    } finally {
      connection.release();
    }
  }

  async function runStatement(connection: PoolConnection, body: ExecuteRequest, parameters: SqlParameter[] | undefined) {
    if (!body.sql) throw new DataApiError(HTTP_BAD_REQUEST, 'BadRequestException', 'SQL statement is required');
    const converted = convertNamedParameters(body.sql, parameterMap(parameters));
    statements++;
    const [result, fields] = await connection.query({
      sql: converted.sql,
      values: converted.values,
      rowsAsArray: true,
      typeCast: false,
    });
    return { result, fields: fields as FieldPacket[] | undefined };
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
      const records = (result as unknown as (Buffer | null)[][]).map((row) =>
        row.map((raw, i) => toField(fields[i] as FieldPacket, raw, body.resultSetOptions)),
      );
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
        if (own) await connection.rollback();
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
      void endTransaction(transactionId, 'rollback').catch(() => {});
    }, idleTimeoutMs);
    timer.unref();
    transactions.set(transactionId, { connection, timer });
    return { transactionId };
  }

  async function route(path: string, body: ExecuteRequest): Promise<unknown> {
    checkArns(body);
    switch (path) {
      case '/Execute':
        return execute(body);
      case '/BatchExecute':
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    try {
      if (req.method !== 'POST') throw new DataApiError(HTTP_NOT_FOUND, 'NotFoundException', 'Only POST is served');
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text ? JSON.parse(text) : {}) as ExecuteRequest;
      const result = await route(new URL(req.url ?? '/', 'http://localhost').pathname, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
    } catch (err) {
      const e = asDataApiError(err);
      res.writeHead(e.status, { 'content-type': 'application/json', 'x-amzn-errortype': e.type });
      res.end(JSON.stringify({ message: e.message }));
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
    async close() {
      for (const id of [...transactions.keys()]) await endTransaction(id, 'rollback').catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...pools.values()].map((pool) => pool.end()));
      pools.clear();
    },
  };
}
