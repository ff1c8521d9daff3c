/**
 * SQLite through better-sqlite3, with two adjustments to Kysely's SqliteDialect:
 * - parameters are encoded the way the MySQL drivers store them: a `Date` becomes 'YYYY-MM-DD HH:MM:SS.fff' UTC
 *   text (sortable, and read back by the same `fromDbTime` as the other dialects), a boolean becomes 1/0
 *   (better-sqlite3 binds neither);
 * - transactions start with BEGIN IMMEDIATE, so a transaction takes the write lock up front and waits for it
 *   under busy_timeout. A deferred BEGIN that reads and then writes fails with SQLITE_BUSY_SNAPSHOT when another
 *   process (a CLI next to the server) wrote in between; taking the lock first serialises writers instead;
 * - prepared statements are cached by SQL text (see `cachePreparedStatements`).
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, SqliteAdapter, SqliteDialect } from 'kysely';
import type { DatabaseConnection, DialectAdapter, Driver, QueryResult, TransactionSettings } from 'kysely';
import { toDbTimeString } from '../column-codec';

/** How long a writer waits for another process's write lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 10_000;

export interface SqliteDialectOptions {
  /** A file path, or ':memory:'. */
  filename: string;
  busyTimeoutMs?: number;
}

/** Prepared statements kept per database handle, least recently used dropped first. */
export const SQLITE_STATEMENT_CACHE_SIZE = 500;

/**
 * Keeps prepared statements by SQL text: Kysely prepares every statement again on each call, which cost more than
 * running it (83,000 prepares, 3.8 s, for 1,000 jobs). The repositories build a bounded set of SQL texts (values
 * are parameters; IN lists vary in length but are chunked), so the cache stays warm. A statement being iterated
 * still being iterated is busy: a call meanwhile gets a statement of its own, not cached.
 */
function cachePreparedStatements(db: BetterSqlite3.Database): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, BetterSqlite3.Statement>();
  db.prepare = ((source: string) => {
    const cached = cache.get(source);
    if (cached && !cached.busy) {
      // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
      cache.delete(source);
      cache.set(source, cached);
      return cached;
    }
    const statement = prepare(source);
    if (cached) return statement;
    cache.set(source, statement);
    if (cache.size > SQLITE_STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    return statement;
  }) as BetterSqlite3.Database['prepare'];
}

/** Encodes one parameter the way better-sqlite3 can bind it and the other dialects store it. */
function encodeParameter(value: unknown): unknown {
  if (value instanceof Date) return toDbTimeString(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

function encodeQuery(query: CompiledQuery): CompiledQuery {
  if (!query.parameters.some((p) => p instanceof Date || typeof p === 'boolean')) return query;
  return { ...query, parameters: query.parameters.map(encodeParameter) };
}

class EncodingConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.inner.executeQuery<R>(encodeQuery(query));
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(encodeQuery(query), chunkSize);
  }
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof EncodingConnection ? connection.inner : connection;
}

/**
 * Loads the native module only when a SQLite database is opened: Lambda bundles (Data API only) leave it out,
 * and a top-level import would make them fail at load.
 */
function loadBetterSqlite3(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    // A bundle copied to a host without it (the agent bundle leaves the native module out).
    throw new Error(`sqlite: databases need the better-sqlite3 package, which is not installed here: run npm install better-sqlite3@12 next to ${import.meta.url.replace(/^file:\/\//, '')}`, { cause: error });
  }
}

/** The better-sqlite3 handle, once the driver opened it. */
interface SqliteFile {
  db?: BetterSqlite3.Database;
}

class ImmediateTransactionDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly file: SqliteFile,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new EncodingConnection(await this.inner.acquireConnection());
  }

  async beginTransaction(connection: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(unwrap(connection));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // Kysely rolls back when BEGIN itself failed (SQLITE_BUSY after the busy timeout); a ROLLBACK then fails with
    // "no transaction is active" and would hide the real error.
    if (this.file.db && !this.file.db.inTransaction) return;
    await this.inner.rollbackTransaction(unwrap(connection));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/**
 * SQLite runs DDL inside transactions. Kysely's adapter says it does not and takes no migration lock (it assumes
 * one connection); saying it does makes the Migrator run in one BEGIN IMMEDIATE transaction, which serialises
 * migrators in different processes on the same file and makes each run all-or-nothing.
 */
export class KurokoSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** Kysely's SQLite dialect with MySQL-compatible parameter encoding and BEGIN IMMEDIATE transactions. */
export class KurokoSqliteDialect extends SqliteDialect {
  private readonly file: SqliteFile;

  constructor(options: SqliteDialectOptions) {
    const file: SqliteFile = {};
    super({
      database: () => {
        const db = new (loadBetterSqlite3())(options.filename);
        // WAL lets readers run while one writer writes; NORMAL sync is durable across process crashes in WAL mode.
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // better-sqlite3 waits synchronously: a lock held by another connection of this same process can never be
        // released meanwhile, so one process opens one handle per file; the timeout is for other processes.
        db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS}`);
        cachePreparedStatements(db);
        file.db = db;
        return Promise.resolve(db);
      },
    });
    this.file = file;
  }

  override createAdapter(): DialectAdapter {
    return new KurokoSqliteAdapter();
  }

  override createDriver(): Driver {
    return new ImmediateTransactionDriver(super.createDriver(), this.file);
  }
}

