/**
 * Test databases are copies of the run's migrated templates (test/helpers/database-template.ts), not migrated one
 * by one: a copy must be exactly what the migrations make, on SQLite and on MariaDB, and a database a file reuses
 * (`{ reuse: true }`) must come back holding the template's rows and nothing else.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { DatabaseHandle } from '../../db/connection';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import type { Database } from '../../db/schema';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** Kysely's table of applied migrations: its rows carry the time they were applied, which no copy shares. */
const MIGRATION_RECORDS = 'kysely_migration';

type Rows = Record<string, unknown>[];

async function tableNames(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  return tables.map((table) => table.name).sort();
}

/** Every table's definition and rows (the migration records by name only). */
async function snapshot(db: Kysely<Database>, dialect: 'sqlite' | 'mysql'): Promise<{ schema: unknown; rows: Record<string, Rows> }> {
  const names = await tableNames(db);
  const schema =
    dialect === 'sqlite'
      ? (await sql<Record<string, unknown>>`select type, name, tbl_name, sql from sqlite_master order by name`.execute(db)).rows
      : await Promise.all(names.map(async (name) => (await sql<Record<string, unknown>>`show create table ${sql.table(name)}`.execute(db)).rows));
  const rows: Record<string, Rows> = {};
  for (const name of names) {
    const selected = name === MIGRATION_RECORDS ? sql`select name from ${sql.table(name)} order by name` : sql`select * from ${sql.table(name)}`;
    rows[name] = (await selected.execute(db)).rows as Rows;
  }
  return { schema, rows };
}

const databaseName = (t: TestDatabase) => new URL(t.url).pathname.slice(1);

async function mysqlDatabaseExists(t: TestDatabase, name: string): Promise<boolean> {
  const found = await sql<{ n: number }>`select count(*) as n from information_schema.schemata where schema_name = ${name}`.execute(t.db);
  return Number(found.rows[0]?.n) === 1;
}

describe('the run has templates', () => {
  it('provides a migrated SQLite file and MariaDB database to copy', () => {
    const templates = inject('databaseTemplates');
    expect(templates.sqlite).toMatch(/template\.db$/);
    expect(templates.mysql?.database).toBe(`${templates.runPrefix}template`);
    expect(templates.mysql?.seeded).toContain('id_blocks');
  });
});

describe.each(['sqlite', 'mysql'] as const)('%s: a copy of the template', (dialect) => {
  const open: (TestDatabase | DatabaseHandle)[] = [];
  afterEach(async () => {
    for (const t of open.splice(0).reverse()) await t.close();
  });

  it('is what the migrations make: the same tables, indexes and seed rows, and nothing left to migrate', async () => {
    const copy = await createTestDatabase(dialect);
    const empty = await createTestDatabase(dialect, { migrate: false });
    open.push(copy, empty);
    expect(await migrateToLatest(empty.db)).toEqual({ applied: migrationNames() });
    expect(await snapshot(copy.db, dialect)).toEqual(await snapshot(empty.db, dialect));
    expect(await migrateToLatest(copy.db)).toEqual({ applied: [] });
  });

  it('is a database of its own per call', async () => {
    const a = await createTestDatabase(dialect);
    const b = await createTestDatabase(dialect);
    open.push(a, b);
    expect(a.url).not.toBe(b.url);
    await insertDefinition(a.db, 1, 'noop:\n');
    expect(await b.db.selectFrom('job_definitions').select('id').execute()).toEqual([]);
  });
});

describe('mysql: a database a file reuses', () => {
  it('comes back after close holding the template rows only, and is dropped when its tables changed', async () => {
    const fresh = await createTestDatabase('mysql');
    try {
      const first = await createTestDatabase('mysql', { reuse: true });
      await insertDefinition(first.db, 1, 'noop:\n');
      await first.idGenerator.nextId();
      await first.close();

      const second = await createTestDatabase('mysql', { reuse: true });
      expect(databaseName(second)).toBe(databaseName(first));
      expect(await snapshot(second.db, 'mysql')).toEqual(await snapshot(fresh.db, 'mysql'));
      // A test that changed the tables spoils the database for the next one: it is dropped, not reused.
      await sql`create table stray (id int primary key)`.execute(second.db);
      await second.close();

      const third = await createTestDatabase('mysql', { reuse: true });
      expect(databaseName(third)).not.toBe(databaseName(second));
      expect(await mysqlDatabaseExists(third, databaseName(second))).toBe(false);
      expect(await tableNames(third.db)).toEqual(await tableNames(fresh.db));
      await third.close();
    } finally {
      await fresh.close();
    }
  });

  it('is dropped on close unless reused', async () => {
    const kept = await createTestDatabase('mysql');
    const dropped = await createTestDatabase('mysql');
    try {
      await dropped.close();
      expect(await mysqlDatabaseExists(kept, databaseName(dropped))).toBe(false);
    } finally {
      await kept.close();
    }
  });
});
