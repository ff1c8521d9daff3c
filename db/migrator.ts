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
import { ERROR_CODES, KurokoError, errorMessage } from '../core/errors';

const provider: MigrationProvider = { getMigrations: () => Promise.resolve({ ...MIGRATIONS }) };

/** The outcome of a run: the names of the migrations this call applied (empty when already up to date). */
export interface MigrationRun {
  applied: string[];
}

/** Kysely's bookkeeping table: one row per applied migration. */
const MIGRATION_TABLE = 'kysely_migration';

/**
 * The database holds migrations this build does not know: a newer build migrated it. Running on it could write
 * rows the newer schema no longer accepts, and no build ever migrates down, so every command refuses to start.
 */
export class SchemaNewerError extends KurokoError {
  readonly unknown: readonly string[];
  readonly newestKnown: string | undefined;
  constructor(unknown: readonly string[], newestKnown: string | undefined) {
    super(
      ERROR_CODES.config,
      `the database schema is newer than this build: it holds migration ${unknown.join(', ')}, which this build does not know (its newest is ${newestKnown ?? 'none'})`,
    );
    this.unknown = unknown;
    this.newestKnown = newestKnown;
  }
}

/** The names of the migrations recorded as applied in the database (empty before the first migration). */
export async function appliedMigrationNames(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((table) => table.name === MIGRATION_TABLE)) return [];
  // Kysely's own table, outside the typed schema.
  const rows = await (db as unknown as Kysely<Record<typeof MIGRATION_TABLE, { name: string }>>).selectFrom(MIGRATION_TABLE).select('name').execute();
  return rows.map((row) => row.name).sort();
}

/** Throws SchemaNewerError when the database holds a migration this build does not know. */
export async function assertSchemaNotNewer(db: Kysely<Database>): Promise<void> {
  const unknown = (await appliedMigrationNames(db)).filter((name) => !Object.hasOwn(MIGRATIONS, name));
  if (unknown.length > 0) throw new SchemaNewerError(unknown, migrationNames().at(-1));
}

/**
 * Brings the schema up to date; harmless when it already is or when another process migrates at the same time.
 * Refuses (SchemaNewerError) a database a newer build migrated: this build never migrates down.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationRun> {
  await assertSchemaNotNewer(db);
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
