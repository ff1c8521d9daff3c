/**
 * Reads the database server's clock, for `kuroko doctor`'s skew check: every process stamps rows with its own
 * clock, so hosts whose clocks disagree with each other (the database's is the common reference) misjudge leases,
 * heartbeats and cron slots.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { DialectName } from './connection';
import type { Database } from './schema';

/** The database server's current UTC time, or undefined on SQLite (a file on this host has no clock of its own). */
export async function readDatabaseClock(db: Kysely<Database>, dialect: DialectName): Promise<Date | undefined> {
  if (dialect === 'sqlite') return undefined;
  // UTC_TIMESTAMP(3) exists on MySQL 8, MariaDB and Aurora MySQL alike; text, as both MySQL legs return it.
  const result = await sql<{ now: string | Date }>`SELECT UTC_TIMESTAMP(3) AS now`.execute(db);
  const value = result.rows[0]?.now;
  if (value === undefined) return undefined;
  return value instanceof Date ? value : new Date(`${String(value).replace(' ', 'T')}Z`);
}
