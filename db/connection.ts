/**
 * Opens the database named by a URL, the only place that knows which driver is behind Kysely:
 * - `sqlite:<file>` (or `sqlite::memory:`): better-sqlite3, WAL, busy timeout, BEGIN IMMEDIATE transactions;
 * - `mysql://user:pass@host:port/db` (also `mariadb://`): a mysql2 pool, UTC, DATETIME read as text;
 * - `data-api://<cluster-arn>?secret=<secret-arn>&database=<db>[&endpoint=<url>][&region=<region>]`: Aurora
 *   MySQL through the RDS Data API (kysely-data-api over `RDSData`).
 *
 * Each driver is imported when its database is first used, not when this module loads: a process holds only the
 * driver it talks to (mysql2 and the AWS SDK together cost a `kuroko agent` on SQLite about 20 MB of memory).
 */
import type { RDSData } from '@aws-sdk/client-rds-data';
import { Kysely, MysqlDialect } from 'kysely';
import type { Dialect, KyselyConfig, MysqlPool } from 'kysely';
import type { Pool, PoolOptions } from 'mysql2';
import { ConfigError } from '../core/errors';
import { KurokoDataApiDialect, type TransactionPrimer } from './dialects/data-api-dialect';
import type { DataApiRetryOptions } from './dialects/data-api-retry';
import { KurokoSqliteDialect } from './dialects/sqlite-dialect';
import type { Database } from './schema';

export const DIALECT = { sqlite: 'sqlite', mysql: 'mysql', dataApi: 'data-api' } as const;
export type DialectName = (typeof DIALECT)[keyof typeof DIALECT];

/** What differs between engines beyond SQL text; repositories branch on these, never on the dialect name. */
export interface DatabaseCapabilities {
  /** `FOR UPDATE SKIP LOCKED` works (MySQL 8, MariaDB 10.6+). SQLite has no row locks. */
  skipLocked: boolean;
  /** `SELECT ... FOR UPDATE` takes row locks. On SQLite a transaction already holds the database write lock. */
  rowLocks: boolean;
  /** Writers are serialised by the engine (SQLite BEGIN IMMEDIATE): a transaction cannot race another writer. */
  serialWriters: boolean;
  /**
   * Every statement is an HTTP round trip of tens of milliseconds and a transaction costs two more calls (Data
   * API): prefer one conditional UPDATE over a transaction, and batch reads.
   */
  costlyStatements: boolean;
  /**
   * `UPDATE ... ORDER BY ... LIMIT n` works (MySQL, MariaDB, Aurora MySQL; SQLite only when compiled with
   * SQLITE_ENABLE_UPDATE_DELETE_LIMIT): a claim can be one locking statement instead of a transaction.
   */
  updateLimit: boolean;
}

const CAPABILITIES: Record<DialectName, DatabaseCapabilities> = {
  sqlite: { skipLocked: false, rowLocks: false, serialWriters: true, costlyStatements: false, updateLimit: false },
  mysql: { skipLocked: true, rowLocks: true, serialWriters: false, costlyStatements: false, updateLimit: true },
  'data-api': { skipLocked: true, rowLocks: true, serialWriters: false, costlyStatements: true, updateLimit: true },
};

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectName;
  capabilities: DatabaseCapabilities;
  /**
   * Every session of the pool already runs READ COMMITTED (MySQL, CreateDatabaseOptions.readCommitted): a
   * transaction that wants it needs no `SET TRANSACTION` round trip first.
   */
  readCommittedSessions?: boolean;
  /** The Data API only: begins a transaction ahead of need (db/dialects/data-api-dialect.ts). */
  primer?: TransactionPrimer;
  /** Closes the pool / file / client; the handle is unusable afterwards. */
  close(): Promise<void>;
}

export interface CreateDatabaseOptions {
  /** mysql2 pool size. */
  poolSize?: number;
  /** SQLite busy timeout. */
  busyTimeoutMs?: number;
  /** Use this Data API client instead of building one from the URL (tests, custom credentials). */
  dataApiClient?: RDSData;
  /** Kysely's query log hook (benches count statements with it). */
  log?: KyselyConfig['log'];
  /** Data API: how long a call waits out a paused cluster's resume, and retry logs (db/dialects/data-api-retry.ts). */
  dataApiRetry?: DataApiRetryOptions;
  /**
   * MySQL: every pooled session runs READ COMMITTED (set once when it connects) instead of REPEATABLE READ. For a
   * process whose only transactions want READ COMMITTED anyway (the agent's claims, issue 18); SQLite and the Data
   * API ignore it.
   */
  readCommitted?: boolean;
}

export type DatabaseUrl =
  | { dialect: 'sqlite'; filename: string }
  | { dialect: 'mysql'; uri: string; database: string }
  | { dialect: 'data-api'; resourceArn: string; secretArn: string; database: string; endpoint?: string; region: string };

const DEFAULT_POOL_SIZE = 10;
/** Credentials for a Data API endpoint on loopback (the test server ignores signatures). */
const LOOPBACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const ARN_REGION_FIELD = 3;

function badUrl(url: string, why: string): ConfigError {
  return new ConfigError([`database URL ${redact(url)} ${why}`]);
}

/** Hides a password in a URL for error messages and banners. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

/** Parses a database URL; throws ConfigError saying what is wrong. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  if (url.startsWith('sqlite:')) {
    let filename = url.slice('sqlite:'.length);
    if (filename.startsWith('//')) filename = filename.slice(2);
    if (filename === '') throw badUrl(url, 'names no file: use sqlite:<path> or sqlite::memory:');
    return { dialect: 'sqlite', filename };
  }
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) {
    let parsed: URL;
    try {
      parsed = new URL(url.replace(/^mariadb:/, 'mysql:'));
    } catch {
      throw badUrl(url, 'is not a valid URL: use mysql://user:pass@host:port/database');
    }
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    if (!parsed.hostname) throw badUrl(url, 'names no host: use mysql://user:pass@host:port/database');
    if (!database) throw badUrl(url, 'names no database: use mysql://user:pass@host:port/database');
    return { dialect: 'mysql', uri: parsed.toString(), database };
  }
  if (url.startsWith('data-api://')) {
    // The cluster ARN holds colons, so this is not a URL a URL parser accepts; split by hand.
    const rest = url.slice('data-api://'.length);
    const queryStart = rest.indexOf('?');
    const resourceArn = decodeURIComponent(queryStart < 0 ? rest : rest.slice(0, queryStart));
    const params = new URLSearchParams(queryStart < 0 ? '' : rest.slice(queryStart + 1));
    const secretArn = params.get('secret');
    const database = params.get('database');
    const problems: string[] = [];
    if (!resourceArn.startsWith('arn:')) problems.push('needs the cluster ARN after data-api://');
    if (!secretArn) problems.push('needs ?secret=<secret-arn>');
    if (!database) problems.push('needs &database=<name>');
    const region = params.get('region') ?? resourceArn.split(':')[ARN_REGION_FIELD] ?? '';
    if (!region) problems.push('needs &region=<region> (or a cluster ARN that names one)');
    const endpoint = params.get('endpoint') ?? undefined;
    if (endpoint !== undefined && !URL.canParse(endpoint)) problems.push(`has an endpoint that is not a URL: ${endpoint}`);
    if (problems.length > 0 || !secretArn || !database) {
      throw new ConfigError(problems.map((p) => `database URL ${url} ${p}`));
    }
    return { dialect: 'data-api', resourceArn, secretArn, database, region, ...(endpoint ? { endpoint } : {}) };
  }
  throw badUrl(url, 'has an unknown scheme: use sqlite:<file>, mysql://... or data-api://<cluster-arn>?...');
}

/** mysql2 settings shared by the app and the test Data API server: UTC, DATETIME as text, safe bigints as numbers. */
export function mysqlPoolOptions(uri: string, poolSize = DEFAULT_POOL_SIZE): PoolOptions {
  return {
    uri,
    connectionLimit: poolSize,
    timezone: 'Z',
    // Text like the Data API returns, so both MySQL legs hand the mappers the same shape.
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'utf8mb4_bin',
  };
}

async function createMysqlPool(uri: string, poolSize: number | undefined, readCommitted: boolean): Promise<Pool> {
  // mysql2 is CommonJS: its module.exports is the default export everywhere (Node, vitest, esbuild chunks), while
  // named exports exist only where Node's CommonJS lexer made them.
  const { createPool } = (await import('mysql2')).default;
  const pool = createPool(mysqlPoolOptions(uri, poolSize));
  // NOW() and friends in UTC too; the stored values never depend on it (times are written by the app).
  pool.on('connection', (connection) => {
    connection.query("SET time_zone = '+00:00'");
    // Queued before any statement of the pool's user, like the time zone (mysql2 runs a connection's commands in order).
    if (readCommitted) connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
  });
  return pool;
}

async function createDataApiClient(parsed: Extract<DatabaseUrl, { dialect: 'data-api' }>): Promise<RDSData> {
  const { RDSData } = await import('@aws-sdk/client-rds-data');
  const loopback = parsed.endpoint !== undefined && LOOPBACK_HOSTS.has(new URL(parsed.endpoint).hostname);
  return new RDSData({
    region: parsed.region,
    // Retries are db/dialects/data-api-retry.ts's: the SDK would also repeat a write after a 5xx, which may apply it twice.
    maxAttempts: 1,
    ...(parsed.endpoint ? { endpoint: parsed.endpoint } : {}),
    ...(loopback ? { credentials: LOOPBACK_CREDENTIALS } : {}),
  });
}

/** Opens the database named by `url` with the dialect, capabilities and a close function. */
export function createDatabase(url: string, options: CreateDatabaseOptions = {}): DatabaseHandle {
  const parsed = parseDatabaseUrl(url);
  let dialect: Dialect;
  let closeExtra: () => Promise<void> | void = () => {};
  switch (parsed.dialect) {
    case 'sqlite':
      dialect = new KurokoSqliteDialect({
        filename: parsed.filename,
        ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
      });
      break;
    case 'mysql': {
      // mysql2's current typings are stricter than the pool shape Kysely 0.27 declares; the runtime API matches.
      dialect = new MysqlDialect({ pool: async () => (await createMysqlPool(parsed.uri, options.poolSize, options.readCommitted === true)) as unknown as MysqlPool });
      break;
    }
    case 'data-api': {
      const given = options.dataApiClient;
      // One promise, so statements racing on first use share one client.
      let client: Promise<RDSData> | undefined;
      if (!given) closeExtra = async () => (await client?.catch(() => undefined))?.destroy();
      dialect = new KurokoDataApiDialect({
        client: () => (client ??= given ? Promise.resolve(given) : createDataApiClient(parsed)),
        resourceArn: parsed.resourceArn,
        secretArn: parsed.secretArn,
        database: parsed.database,
        ...(options.dataApiRetry ? { retry: options.dataApiRetry } : {}),
      });
      break;
    }
  }
  const db = new Kysely<Database>({ dialect, ...(options.log ? { log: options.log } : {}) });
  let closed: Promise<void> | undefined;
  return {
    db,
    dialect: parsed.dialect,
    capabilities: CAPABILITIES[parsed.dialect],
    readCommittedSessions: parsed.dialect === 'mysql' && options.readCommitted === true,
    ...(dialect instanceof KurokoDataApiDialect ? { primer: dialect.primer } : {}),
    close() {
      closed ??= db.destroy().then(closeExtra);
      return closed;
    },
  };
}
