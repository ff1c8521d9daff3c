/**
 * A fresh, migrated database per call, on any of the three dialects:
 * - sqlite: a file in a new temporary folder;
 * - mysql: `CREATE DATABASE kuroko_test_<random>` on the test MariaDB, dropped on close;
 * - data-api: the same, behind its own local Data API server (test/helpers/data-api-server.ts).
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
export async function createMysqlDatabase(serverUrl = testMysqlUrl()): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `kuroko_test_${randomBytes(RANDOM_NAME_BYTES).toString('hex')}`;
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
    if (dialect === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'kuroko-sqlite-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      url = `sqlite:${join(dir, 'kuroko.db')}`;
    } else {
      const mysql = await createMysqlDatabase();
      cleanups.push(mysql.drop);
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
    if (options.migrate !== false) await migrateToLatest(handle.db);
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
