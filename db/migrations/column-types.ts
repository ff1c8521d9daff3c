/**
 * Column types and table options per engine, for migrations written once with the schema builder.
 * Migrations are append-only and rely on these: add new helpers, never change what an existing one returns.
 */
import { SqliteAdapter, sql } from 'kysely';
import type { ColumnDataType, CreateTableBuilder, Expression, Kysely } from 'kysely';

/** What `addColumn` accepts as a type (Kysely 0.27 does not export its own alias). */
export type DataTypeExpression = ColumnDataType | Expression<unknown>;

export interface ColumnTypes {
  /** App-generated 64-bit id. On SQLite INTEGER, so a primary key is the rowid itself. */
  id: DataTypeExpression;
  /** Text up to 16 MiB on MySQL (scripts, JSON documents, output excerpts). */
  text: DataTypeExpression;
  /** Text up to 4 GiB on MySQL (log lines). */
  longText: DataTypeExpression;
  /** A UTC instant to the millisecond: DATETIME(3) on MySQL, 'YYYY-MM-DD HH:MM:SS.fff' text on SQLite. */
  time: DataTypeExpression;
}

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

/** True when the database behind `db` is SQLite. */
export function isSqlite(db: AnyKysely): boolean {
  return db.getExecutor().adapter instanceof SqliteAdapter;
}

/** The column types for the engine behind `db`. */
export function columnTypes(db: AnyKysely): ColumnTypes {
  if (isSqlite(db)) return { id: 'integer', text: 'text', longText: 'text', time: 'text' };
  return { id: 'bigint', text: sql`mediumtext`, longText: sql`longtext`, time: sql`datetime(3)` };
}

/**
 * Table options: on MySQL InnoDB, utf8mb4 for emoji and binary collation, so comparisons and unique keys are
 * exact and case-sensitive like on SQLite. Undefined on SQLite.
 */
function tableOptions(db: AnyKysely): Expression<unknown> | undefined {
  return isSqlite(db) ? undefined : sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin`;
}

/** Starts a CREATE TABLE with the engine's table options (tableOptions) already applied. */
export function tableCreator(db: AnyKysely): (name: string) => CreateTableBuilder<string, never> {
  const options = tableOptions(db);
  return (name) => {
    const builder = db.schema.createTable(name);
    return options ? builder.modifyEnd(options) : builder;
  };
}
