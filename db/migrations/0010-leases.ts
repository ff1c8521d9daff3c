/**
 * Leases (issue 18): one row per pass that runs as a single runner per deployment on AWS. Every agent finish, API
 * launch and scheduler launch invokes the processor Lambda asynchronously and nothing bounds its concurrency, so
 * many invocations ran the same passes at once, racing on the same rows (deadlocks, lost races, calls for nothing).
 * An invocation takes the row with one conditional UPDATE; one that finds it held counts a rerun request there and
 * returns (db/repositories/lease-repository.ts, app/lambda/processor-lease.ts).
 *
 * - holder: the invocation holding the lease (NULL: free);
 * - held_until: when the lease lapses unless renewed (a crashed holder's lease frees itself);
 * - rerun_requests: invocations that found the lease held since the holder last looked; the holder runs again
 *   rather than release while it is not 0, so no nudge is lost.
 *
 * scheduler_state (name, last_pass_at, updated_at) has no column for a holder or a request count: a table of its own.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { columnTypes, tableCreator } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

/** The epoch in the stored time format of every dialect: lapsed. */
const EPOCH = '1970-01-01 00:00:00.000';

async function up(db: AnyKysely): Promise<void> {
  const types = columnTypes(db);
  await tableCreator(db)('leases')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('holder', 'varchar(64)')
    .addColumn('held_until', types.time, (c) => c.notNull().defaultTo(sql.lit(EPOCH)))
    .addColumn('rerun_requests', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // The processor's row exists from the start, so taking it is a single UPDATE.
  await db.insertInto('leases').values({ name: 'processor', holder: null, held_until: EPOCH, rerun_requests: 0 }).execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.dropTable('leases').execute();
}

/** Adds the leases table and the processor's free lease. */
export const leases: Migration = { up, down };
