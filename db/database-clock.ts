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

/** A clock that reads `local` corrected by its offset from the database's clock, measured at each `sync()`. */
export interface DatabaseAlignedClock {
  now(): Date;
  /** Measures the offset again (one query); keeps the last offset when the database does not answer. */
  sync(): Promise<void>;
}

/**
 * The agent's clock: the rows it stamps (heartbeats, claims, leases, starts, finishes) are read by the monitor and
 * the engine on other hosts, so a host whose clock is minutes off would be judged lost at once (behind) or never
 * (ahead). Aligned on the database's clock, the common reference, half the query's round trip taken as its delay.
 * On SQLite the database is a file on this host: no offset.
 */
export function databaseAlignedClock(db: Kysely<Database>, dialect: DialectName, local: () => number = () => Date.now()): DatabaseAlignedClock {
  let offsetMs = 0;
  return {
    now: () => new Date(local() + offsetMs),
    async sync() {
      const before = local();
      const reference = await readDatabaseClock(db, dialect);
      const after = local();
      if (reference !== undefined) offsetMs = reference.getTime() - (before + after) / 2;
    },
  };
}
