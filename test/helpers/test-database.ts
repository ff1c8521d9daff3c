/**
 * A fresh, migrated database per call, on any of the three dialects:
 * - sqlite: a file in a new temporary folder;
 * - mysql: `CREATE DATABASE kuroko_test_<run>_<random>` on the test MariaDB, dropped on close;
 * - data-api: the same, behind its own local Data API server (test/helpers/data-api-server.ts).
 * "Migrated" means a copy of the run's template (test/helpers/database-template.ts, made once by the global setup),
 * which is the migrated schema and seed rows without running the migrations again; without a template (outside
 * vitest's global setup) each database is migrated.
 *
 * A file that wants a fresh database for every test passes `{ reuse: true }`: its MariaDB database is then kept
 * when closed and emptied back to the template's rows for the next test of the same file (each file still has
 * its own databases, so files stay parallel-safe); the run's teardown drops it.
 *
 * `describeEachDialect` runs one contract suite on all three (Kysely's `for (const dialect of DIALECTS)`).
 * KUROKO_TEST_DIALECTS=sqlite,mysql narrows the list on purpose; nothing is ever skipped for lack of a server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { describe, inject } from 'vitest';
import { createDatabase } from '../../db/connection';
import type { DatabaseCapabilities, DatabaseHandle, DialectName } from '../../db/connection';
import { createIdGenerator } from '../../db/id-generator';
import type { BlockIdGenerator } from '../../db/id-generator';
import { migrateToLatest } from '../../db/migrator';
import type { Database } from '../../db/schema';
import { startDataApiServer } from './data-api-server';
import { cloneMysqlTemplate, copySqliteTemplate, dropMysqlDatabase, resetMysqlDatabase } from './database-template';
import type { DatabaseTemplates } from './database-template';
import type { DataApiServer, DataApiServerOptions } from './data-api-server';

export const DIALECTS = ['sqlite', 'mysql', 'data-api'] as const satisfies readonly DialectName[];
export type TestDialect = (typeof DIALECTS)[number];

const RANDOM_NAME_BYTES = 6;
const TEST_ID_BLOCK_SIZE = 20;

export interface TestDatabase {
  dialect: TestDialect;
  db: Kysely<Database>;
  capabilities: DatabaseCapabilities;
  /** The URL the database was opened with (open a second handle on it to play another process). */
  url: string;
  idGenerator: BlockIdGenerator;
  /** The local Data API server behind a 'data-api' database (statement counts, latency). */
  dataApi?: DataApiServer;
  /** Opens another, independent handle on the same database (another pool / client), migrations not run. */
  openAnother(): DatabaseHandle;
  close(): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /** Skip the migrations (tests of the migrator itself). */
  migrate?: boolean;
  /**
   * MariaDB (mysql, data-api): keep the database when closed and hand it to the next `reuse` call of this test file,
   * emptied back to the template's rows, instead of creating one per call. For tests that change rows, never the
   * schema. SQLite databases are fresh copies of the template either way.
   */
  reuse?: boolean;
  /** Per-call latency of the Data API server. */
  dataApiLatencyMs?: number;
  /** More options of the Data API server (its limits are on by default; autoPause, faults, timeouts). */
  dataApi?: Omit<DataApiServerOptions, 'mysqlUrl'>;
}

/** The server-level URL of the test MariaDB; throws the setup's one-line reason when there is none. */
export function testMysqlUrl(): string {
  const url = inject('mysqlUrl');
  if (!url) throw new Error(inject('mysqlUnavailable') || 'no MySQL for tests (see test/helpers/global-setup.ts)');
  return url;
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Creates an empty MariaDB database with a random name on `serverUrl` (the test server by default; benches, which
 * run outside vitest, name theirs); returns its name and a function that drops it.
 */
export async function createMysqlDatabase(
  serverUrl = testMysqlUrl(),
  name = `kuroko_test_${randomBytes(RANDOM_NAME_BYTES).toString('hex')}`,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const admin = new URL(serverUrl);
  admin.pathname = '/';
  const run = async (statement: string) => {
    const connection = await createConnection({ uri: admin.toString() });
    try {
      await connection.query(statement);
    } finally {
      await connection.end();
    }
  };
  await run(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  return { url: withDatabase(serverUrl, name), name, drop: () => run(`DROP DATABASE IF EXISTS \`${name}\``) };
}

/** The run's templates; none outside a vitest run with the global setup (the databases are migrated then). */
function templates(): DatabaseTemplates | undefined {
  return inject('databaseTemplates');
}

/** This file's MariaDB databases closed by `reuse` tests, waiting for the next one (this process is this file). */
const parked: string[] = [];

interface MysqlTestDatabase {
  url: string;
  name: string;
  /** The database already has the migrated schema (a copy of the template). */
  migrated: boolean;
  /** Drops the database, or parks it for the next `reuse` call. */
  release(): Promise<void>;
}

/** A MariaDB database for a test: a parked one emptied back to the template, a copy of the template, or empty. */
async function mysqlTestDatabase(options: CreateTestDatabaseOptions): Promise<MysqlTestDatabase> {
  const serverUrl = testMysqlUrl();
  const run = templates();
  const template = options.migrate === false ? undefined : run?.mysql;
  const opened = (name: string, migrated: boolean): MysqlTestDatabase => ({
    url: withDatabase(serverUrl, name),
    name,
    migrated,
    release: async () => {
      if (options.reuse && migrated) parked.push(name);
      else await dropMysqlDatabase(serverUrl, name);
    },
  });
  if (template && options.reuse) {
    for (let name = parked.pop(); name !== undefined; name = parked.pop()) {
      if (await resetMysqlDatabase(serverUrl, template, name)) return opened(name, true);
      await dropMysqlDatabase(serverUrl, name);
    }
  }
  const name = `${run?.runPrefix ?? 'kuroko_test_'}${randomBytes(RANDOM_NAME_BYTES).toString('hex')}`;
  if (!template) return opened((await createMysqlDatabase(serverUrl, name)).name, false);
  await cloneMysqlTemplate(serverUrl, template, name);
  return opened(name, true);
}

/** Creates a fresh database of the given dialect, migrated unless told otherwise. */
export async function createTestDatabase(
  dialect: TestDialect,
  options: CreateTestDatabaseOptions = {},
): Promise<TestDatabase> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  };
  try {
    let url: string;
    let dataApi: DataApiServer | undefined;
    let migrated = false;
    if (dialect === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'kuroko-sqlite-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'kuroko.db');
      const template = options.migrate === false ? undefined : templates()?.sqlite;
      if (template) copySqliteTemplate(template, file);
      migrated = template !== undefined;
      url = `sqlite:${file}`;
    } else {
      const mysql = await mysqlTestDatabase(options);
      cleanups.push(() => mysql.release());
      migrated = mysql.migrated;
      if (dialect === 'mysql') {
        url = mysql.url;
      } else {
        const server = await startDataApiServer({
          ...options.dataApi,
          mysqlUrl: mysql.url,
          ...(options.dataApiLatencyMs !== undefined ? { latencyMs: options.dataApiLatencyMs } : {}),
        });
        dataApi = server;
        cleanups.push(() => server.close());
        url =
          `data-api://${server.resourceArn}?secret=${encodeURIComponent(server.secretArn)}` +
          `&database=${mysql.name}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
      }
    }
    const handle = createDatabase(url);
    cleanups.push(() => handle.close());
    if (options.migrate !== false && !migrated) await migrateToLatest(handle.db);
    return {
      dialect,
      db: handle.db,
      capabilities: handle.capabilities,
      url,
      idGenerator: createIdGenerator(handle.db, { blockSize: TEST_ID_BLOCK_SIZE }),
      ...(dataApi ? { dataApi } : {}),
      openAnother: () => createDatabase(url),
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The dialects selected by KUROKO_TEST_DIALECTS (all three by default). */
export function selectedDialects(): readonly TestDialect[] {
  const wanted = process.env.KUROKO_TEST_DIALECTS;
  if (!wanted) return DIALECTS;
  const names = wanted.split(',').map((s) => s.trim());
  return DIALECTS.filter((d) => names.includes(d));
}

/** Declares the same suite once per dialect, titled `<dialect>: <name>`. */
export function describeEachDialect(name: string, fn: (dialect: TestDialect) => void): void {
  for (const dialect of selectedDialects()) {
    describe(`${dialect}: ${name}`, () => fn(dialect));
  }
}
