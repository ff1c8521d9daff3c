/**
 * The run's template databases: migrated once per test run (test/helpers/global-setup.ts), then copied for every
 * test database instead of migrating each one (test/helpers/test-database.ts):
 * - SQLite: a migrated file, copied per database (a few milliseconds against ~100 ms of migrations);
 * - MariaDB (also behind the Data API stand-in): a migrated database whose tables are recreated from their
 *   `SHOW CREATE TABLE` and whose seed rows are copied (~0.7 s against 2-3 s of migrations), or, for a database a
 *   test file reuses, emptied back to the seed rows (~50 ms).
 * This module runs in the global setup (no vitest APIs) and in test workers.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { createDatabase } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';

/** A migrated MariaDB database and what copying it takes; plain data, passed from the global setup to workers. */
export interface MysqlTemplate {
  database: string;
  /** Every table's `CREATE TABLE` statement (as `SHOW CREATE TABLE` prints it). */
  createTables: string[];
  /** Every table, Kysely's bookkeeping tables included. */
  tables: string[];
  /** The tables that hold rows after the migrations (the id sequence, the migration records). */
  seeded: string[];
  /** The tables with an AUTO_INCREMENT counter (emptied with TRUNCATE, which resets it). */
  autoIncrement: string[];
}

/** What the global setup provides to the tests (`inject('databaseTemplates')`). */
export interface DatabaseTemplates {
  /** Names every MariaDB database of this run (`kuroko_test_<run>_…`); the teardown drops those left over. */
  runPrefix: string;
  /** A migrated SQLite file, when it could be made. */
  sqlite?: string;
  /** A migrated MariaDB database, when there is a MariaDB. */
  mysql?: MysqlTemplate;
}

const quote = (name: string) => `\`${name.replaceAll('`', '``')}\``;

function serverLevel(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.pathname = '/';
  return url.toString();
}

function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(serverUrl: string, fn: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await createConnection({ uri: serverLevel(serverUrl), multipleStatements: true });
  try {
    return await fn(connection);
  } finally {
    await connection.end();
  }
}

async function rows(connection: Connection, statement: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const [result] = await connection.query<RowDataPacket[]>(statement, values);
  return result;
}

/** Creates and migrates a SQLite file in a new temporary folder; returns its path and the folder's removal. */
export async function createSqliteTemplate(): Promise<{ path: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-sqlite-template-'));
  const path = join(dir, 'template.db');
  try {
    const handle = createDatabase(`sqlite:${path}`);
    try {
      await migrateToLatest(handle.db);
    } finally {
      // Closing the last connection checkpoints the WAL into the file: the file alone is the migrated database.
      await handle.close();
    }
    if (existsSync(`${path}-wal`)) throw new Error(`the SQLite template kept a WAL file: ${path}-wal`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A migrated SQLite database at `path`: a copy of the template. */
export function copySqliteTemplate(template: string, path: string): void {
  copyFileSync(template, path);
}

/** Creates and migrates the MariaDB template `database`, then reads what copying it takes. */
export async function createMysqlTemplate(serverUrl: string, database: string): Promise<MysqlTemplate> {
  await withAdmin(serverUrl, (c) => c.query(`CREATE DATABASE ${quote(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
  const handle = createDatabase(databaseUrl(serverUrl, database));
  try {
    await migrateToLatest(handle.db);
  } finally {
    await handle.close();
  }
  return withAdmin(serverUrl, async (c) => {
    const listed = await rows(
      c,
      'SELECT table_name AS name, auto_increment AS counter FROM information_schema.tables WHERE table_schema = ? AND table_type = ? ORDER BY table_name',
      [database, 'BASE TABLE'],
    );
    const tables = listed.map((row) => String(row.name));
    const createTables: string[] = [];
    const seeded: string[] = [];
    for (const table of tables) {
      const [created] = await rows(c, `SHOW CREATE TABLE ${quote(database)}.${quote(table)}`);
      createTables.push(String(created!['Create Table']));
      if ((await rows(c, `SELECT 1 FROM ${quote(database)}.${quote(table)} LIMIT 1`)).length > 0) seeded.push(table);
    }
    const autoIncrement = listed.filter((row) => row.counter !== null).map((row) => String(row.name));
    return { database, createTables, tables, seeded, autoIncrement };
  });
}

const copySeedRows = (template: MysqlTemplate, database: string) =>
  template.seeded.map((table) => `INSERT INTO ${quote(database)}.${quote(table)} SELECT * FROM ${quote(template.database)}.${quote(table)}`);

/** Creates `database` as a copy of the template: its tables, indexes and seed rows. */
export async function cloneMysqlTemplate(serverUrl: string, template: MysqlTemplate, database: string): Promise<void> {
  await withAdmin(serverUrl, (c) =>
    c.query(
      [
        `CREATE DATABASE ${quote(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
        `USE ${quote(database)}`,
        ...template.createTables,
        ...copySeedRows(template, database),
      ].join(';\n'),
    ),
  );
}

/**
 * Empties a copy of the template back to the template's rows. Returns false, changing nothing, when its tables are
 * not the template's (a test created or dropped one): such a database cannot be reused.
 */
export async function resetMysqlDatabase(serverUrl: string, template: MysqlTemplate, database: string): Promise<boolean> {
  return withAdmin(serverUrl, async (c) => {
    const listed = await rows(c, 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name', [database]);
    if (listed.map((row) => String(row.name)).join('\n') !== template.tables.join('\n')) return false;
    await c.query(
      [
        ...template.tables.map((table) =>
          template.autoIncrement.includes(table) ? `TRUNCATE TABLE ${quote(database)}.${quote(table)}` : `DELETE FROM ${quote(database)}.${quote(table)}`,
        ),
        ...copySeedRows(template, database),
      ].join(';\n'),
    );
    return true;
  });
}

/** Drops a database (no error when it is gone). */
export async function dropMysqlDatabase(serverUrl: string, database: string): Promise<void> {
  await withAdmin(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quote(database)}`));
}

const DROP_CONCURRENCY = 4;

/** Drops every database whose name starts with `prefix`; returns how many. */
export async function dropDatabasesNamed(serverUrl: string, prefix: string): Promise<number> {
  const names = await withAdmin(serverUrl, async (c) =>
    (await rows(c, 'SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])).map(
      (row) => String(row.name),
    ),
  );
  const queue = [...names];
  await Promise.all(
    Array.from({ length: Math.min(DROP_CONCURRENCY, queue.length) }, async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) await dropMysqlDatabase(serverUrl, name);
    }),
  );
  return names.length;
}
