/**
 * UPDATE and DELETE heads that read by a named index on MySQL, MariaDB and Aurora MySQL (the Data API).
 *
 * Their optimizer scans a small table for `col IN (...)` instead of reading it by key (EXPLAIN: `ALL` for 4 of 8
 * rows), and an UPDATE or DELETE locks every row it scans
 * (https://dev.mysql.com/doc/refman/8.0/en/innodb-locks-set.html). `tokens` and `executions` hold only what is in
 * flight, so they are small: a pass's write then held every token or command until it committed, and the agents'
 * claims and reports, and the launches, waited on it or deadlocked (bench:throughput W2 and W3). FORCE INDEX works in
 * an UPDATE and in the multi-table DELETE form, not in a single-table DELETE
 * (https://dev.mysql.com/doc/refman/8.0/en/index-hints.html). SQLite has no row locks: plain heads there.
 */
import { SqliteAdapter, sql, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from '../schema';

type Trx = Transaction<Database>;

const isSqlite = (trx: Trx) => trx.getExecutor().adapter instanceof SqliteAdapter;

/** `update <table>`, reading by `index` where there are row locks. */
export function updateKeyed(trx: Trx, table: string, index: string): RawBuilder<unknown> {
  return isSqlite(trx) ? sql`update ${sql.ref(table)}` : sql`update ${sql.ref(table)} force index (${sql.raw(index)})`;
}

/** `delete from <table>`, reading by `index` where there are row locks. */
export function deleteKeyed(trx: Trx, table: string, index: string): RawBuilder<unknown> {
  return isSqlite(trx) ? sql`delete from ${sql.ref(table)}` : sql`delete ${sql.ref(table)} from ${sql.ref(table)} force index (${sql.raw(index)})`;
}
