/**
 * Throughput (issue 18): passes whose cost follows the work, not the backlog.
 * - tokens.wake_at: when the token's next step is due. The processor reads the tokens whose time has come (by
 *   `tokens_wake_idx`) and those whose command ended (by `executions_finished_idx`), instead of every token in
 *   flight. New rows default to the epoch, due at once, so a token written by any path is stepped.
 * - tokens.waits_on_instance_id: the sub process a token waits for, so the sub instance's end wakes it by index.
 * - tokens(job_definition_id): prevent_multi looks up a definition's tokens in flight by index, not by a scan.
 * - executions(finished_at): finished commands waiting for their step, and orphans to archive, by index (the idle
 *   processor pass scanned every execution).
 * - events.notified: 1 once every channel has its delivery row. The notifier reads the events still at 0 by
 *   `events_unnotified_idx` instead of checking every event of its window against its deliveries on every pass.
 *   Events that already have delivery rows start settled.
 * - job_schedules.next_fire_at: the scheduler reads the schedules due now (by `job_schedules_next_fire_idx`; NULL,
 *   as a schedule written by any path starts, is due) instead of every definition with its schedules, and
 *   job_definitions(updated_at) finds the definitions edited since the last pass (a new time zone moves the slots).
 * - job_instances(finished_at, canceled_at, error_at): `/v1/stats/instance` and the monitor's instances in error
 *   count and read the open instances from the index, not every instance ever run (a canceled instance keeps a
 *   NULL finished_at, so the single-column index of 0008 still led to every canceled one).
 * - memory_samples(sampled_at): the monitor's recent memory peaks read the recent samples, not the whole history.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { columnTypes } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

/** The epoch in the stored time format of every dialect: due at once. */
const EPOCH = '1970-01-01 00:00:00.000';

async function up(db: AnyKysely): Promise<void> {
  const types = columnTypes(db);
  await db.schema
    .alterTable('tokens')
    .addColumn('wake_at', types.time, (col) => col.notNull().defaultTo(sql.lit(EPOCH)))
    .execute();
  await db.schema.alterTable('tokens').addColumn('waits_on_instance_id', types.id).execute();
  await db.schema.createIndex('tokens_wake_idx').on('tokens').column('wake_at').execute();
  await db.schema.createIndex('tokens_waits_on_idx').on('tokens').column('waits_on_instance_id').execute();
  await db.schema.createIndex('tokens_definition_idx').on('tokens').column('job_definition_id').execute();
  await db.schema.createIndex('executions_finished_idx').on('executions').column('finished_at').execute();
  await db.schema.alterTable('events').addColumn('notified', 'integer', (col) => col.notNull().defaultTo(0)).execute();
  await db.updateTable('events').set({ notified: 1 }).where('id', 'in', db.selectFrom('event_deliveries').select('event_id')).execute();
  await db.schema.createIndex('events_unnotified_idx').on('events').columns(['notified', 'created_at']).execute();
  await db.schema.alterTable('job_schedules').addColumn('next_fire_at', types.time).execute();
  await db.schema.createIndex('job_schedules_next_fire_idx').on('job_schedules').column('next_fire_at').execute();
  await db.schema.createIndex('job_definitions_updated_idx').on('job_definitions').column('updated_at').execute();
  await db.schema.createIndex('job_instances_open_idx').on('job_instances').columns(['finished_at', 'canceled_at', 'error_at']).execute();
  await db.schema.createIndex('memory_samples_sampled_idx').on('memory_samples').column('sampled_at').execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.dropIndex('memory_samples_sampled_idx').on('memory_samples').execute();
  await db.schema.dropIndex('job_instances_open_idx').on('job_instances').execute();
  await db.schema.dropIndex('job_definitions_updated_idx').on('job_definitions').execute();
  await db.schema.dropIndex('job_schedules_next_fire_idx').on('job_schedules').execute();
  await db.schema.alterTable('job_schedules').dropColumn('next_fire_at').execute();
  await db.schema.dropIndex('events_unnotified_idx').on('events').execute();
  await db.schema.alterTable('events').dropColumn('notified').execute();
  await db.schema.dropIndex('executions_finished_idx').on('executions').execute();
  await db.schema.dropIndex('tokens_definition_idx').on('tokens').execute();
  await db.schema.dropIndex('tokens_waits_on_idx').on('tokens').execute();
  await db.schema.dropIndex('tokens_wake_idx').on('tokens').execute();
  await db.schema.alterTable('tokens').dropColumn('waits_on_instance_id').execute();
  await db.schema.alterTable('tokens').dropColumn('wake_at').execute();
}

/** Adds the columns and indexes that let the processor, prevent_multi and the idle pass read only what is due. */
export const throughput: Migration = { up, down };
