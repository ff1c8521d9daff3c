/**
 * Runs the append-only migrations. Safe to run twice (applied migrations are recorded in `kysely_migration`) and
 * concurrently from several processes: Kysely's Migrator serialises runs with a lock per engine (GET_LOCK on a
 * dedicated mysql2 connection; on SQLite the run is one BEGIN IMMEDIATE transaction; on the Data API a lease row,
 * see db/dialects/data-api-dialect.ts), and the loser of the race finds nothing left to do.
 */
import { Migrator } from 'kysely';
import type { Kysely, MigrationProvider, MigrationResult } from 'kysely';
import { MIGRATIONS } from './migrations';
import type { Database } from './schema';
import { errorMessage } from '../core/errors';

const provider: MigrationProvider = { getMigrations: () => Promise.resolve({ ...MIGRATIONS }) };

/** The outcome of a run: the names of the migrations this call applied (empty when already up to date). */
export interface MigrationRun {
  applied: string[];
}

/** Brings the schema up to date; harmless when it already is or when another process migrates at the same time. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationRun> {
  const migrator = new Migrator({ db, provider });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) {
    const failed = results.find((r: MigrationResult) => r.status === 'Error');
    const where = failed ? ` in ${failed.migrationName}` : '';
    // Not a KurokoError: a failed migration is an operator problem, never an expected outcome to map.
    throw new Error(`database migration failed${where}: ${errorMessage(error)}`, { cause: error });
  }
  return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/** The names of every known migration, in run order. */
export function migrationNames(): string[] {
  return Object.keys(MIGRATIONS).sort();
}
