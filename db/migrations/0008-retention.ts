/**
 * Retention (issue 17):
 * - job_definitions.retention_days: how many days a finished or canceled instance of the definition is kept.
 *   NULL follows the global policy (KUROKO_RETENTION_DAYS, 90 by default); 0 keeps them forever.
 * - job_instances(finished_at) and job_instances(canceled_at): the retention pass picks the oldest ended
 *   instances in small batches by these, so each batch reads a short index range instead of scanning the table.
 * - schedule_slots(job_instance_id): a deleted instance's slot keeps its launch key and drops the instance id; the
 *   index keeps that UPDATE to the slot rows concerned (a scan would lock every slot the scheduler writes).
 */
import type { Kysely, Migration } from 'kysely';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

async function up(db: AnyKysely): Promise<void> {
  await db.schema.alterTable('job_definitions').addColumn('retention_days', 'integer').execute();
  await db.schema.createIndex('job_instances_finished_idx').on('job_instances').column('finished_at').execute();
  await db.schema.createIndex('job_instances_canceled_idx').on('job_instances').column('canceled_at').execute();
  await db.schema.createIndex('schedule_slots_instance_idx').on('schedule_slots').column('job_instance_id').execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.dropIndex('schedule_slots_instance_idx').on('schedule_slots').execute();
  await db.schema.dropIndex('job_instances_canceled_idx').on('job_instances').execute();
  await db.schema.dropIndex('job_instances_finished_idx').on('job_instances').execute();
  await db.schema.alterTable('job_definitions').dropColumn('retention_days').execute();
}

/** Adds the per-definition retention override and the indexes the retention pass selects by. */
export const retention: Migration = { up, down };
