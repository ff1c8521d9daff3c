/**
 * The initial schema. No foreign keys: rows are written and removed in bulk by fenced, version-checked
 * statements, and cross-table integrity is the engine's job (as in Kuroko2); FKs would add lock waits on MySQL
 * and ordering constraints on deletes without protecting any invariant the tests do not already cover.
 */
import type { CreateTableBuilder, Kysely, Migration } from 'kysely';
import { columnTypes, tableCreator } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

const TABLES = [
  'job_definitions',
  'tags',
  'job_definition_tags',
  'script_revisions',
  'job_schedules',
  'job_suspend_schedules',
  'job_instances',
  'tokens',
  'executions',
  'execution_histories',
  'workers',
  'process_signals',
  'instance_logs',
  'events',
  'event_deliveries',
  'schedule_slots',
  'scheduler_state',
  'api_clients',
  'memory_samples',
  'alerts',
  'id_blocks',
] as const;

/** The sequence every id comes from (see db/id-generator.ts). */
export const GLOBAL_ID_SEQUENCE = 'global';
const FIRST_ID = 1;

async function up(db: AnyKysely): Promise<void> {
  const t = columnTypes(db);
  const table: (name: (typeof TABLES)[number]) => CreateTableBuilder<string, never> = tableCreator(db);

  await table('job_definitions')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', t.text, (c) => c.notNull())
    .addColumn('script', t.text, (c) => c.notNull())
    .addColumn('time_zone', 'varchar(64)', (c) => c.notNull())
    .addColumn('suspended', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('prevent_multi', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('notify_cancellation', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('notify_all', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('api_allowed', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('slack_channel', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('webhook_url', 'varchar(2048)')
    .addColumn('catch_up_window_minutes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('job_definitions_name_idx').on('job_definitions').column('name').execute();

  await table('tags')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('tags_name_key', ['name'])
    .execute();

  await table('job_definition_tags')
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('tag_id', t.id, (c) => c.notNull())
    .addPrimaryKeyConstraint('job_definition_tags_pkey', ['job_definition_id', 'tag_id'])
    .execute();
  await db.schema.createIndex('job_definition_tags_tag_idx').on('job_definition_tags').column('tag_id').execute();

  await table('script_revisions')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('script', t.text, (c) => c.notNull())
    .addColumn('changed_by', 'varchar(255)', (c) => c.notNull())
    .addColumn('changed_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('script_revisions_definition_idx')
    .on('script_revisions')
    .columns(['job_definition_id', 'changed_at'])
    .execute();

  for (const name of ['job_schedules', 'job_suspend_schedules'] as const) {
    await table(name)
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('job_definition_id', t.id, (c) => c.notNull())
      .addColumn('cron', 'varchar(255)', (c) => c.notNull())
      .addColumn('created_at', t.time, (c) => c.notNull())
      .addUniqueConstraint(`${name}_definition_cron_key`, ['job_definition_id', 'cron'])
      .execute();
  }

  await table('job_instances')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('script', t.text, (c) => c.notNull())
    .addColumn('launched_by', 'varchar(255)', (c) => c.notNull())
    .addColumn('retrying', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('env', t.text, (c) => c.notNull())
    .addColumn('idempotency_key', 'varchar(255)')
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('finished_at', t.time)
    .addColumn('canceled_at', t.time)
    .addColumn('error_at', t.time)
    .addUniqueConstraint('job_instances_idempotency_key', ['job_definition_id', 'idempotency_key'])
    .execute();
  await db.schema
    .createIndex('job_instances_definition_created_idx')
    .on('job_instances')
    .columns(['job_definition_id', 'created_at'])
    .execute();
  await db.schema.createIndex('job_instances_created_idx').on('job_instances').column('created_at').execute();

  await table('tokens')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('uuid', 'varchar(36)', (c) => c.notNull())
    .addColumn('job_instance_id', t.id, (c) => c.notNull())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('parent_id', t.id)
    .addColumn('script', t.text, (c) => c.notNull())
    .addColumn('path', 'varchar(1024)', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull())
    .addColumn('message', t.text, (c) => c.notNull())
    .addColumn('context', t.text, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tokens_status_idx').on('tokens').column('status').execute();
  await db.schema.createIndex('tokens_instance_idx').on('tokens').column('job_instance_id').execute();

  await table('executions')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('uuid', 'varchar(36)', (c) => c.notNull())
    .addColumn('token_id', t.id, (c) => c.notNull())
    .addColumn('job_instance_id', t.id, (c) => c.notNull())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('queue', 'varchar(255)', (c) => c.notNull())
    .addColumn('shell', t.text, (c) => c.notNull())
    .addColumn('env', t.text, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('worker_id', t.id)
    .addColumn('hostname', 'varchar(255)')
    .addColumn('lease_expires_at', t.time)
    .addColumn('claimed_at', t.time)
    .addColumn('pid', 'integer')
    .addColumn('started_at', t.time)
    .addColumn('finished_at', t.time)
    .addColumn('exit_status', 'smallint')
    .addColumn('term_signal', 'varchar(32)')
    .addColumn('output_head', t.text, (c) => c.notNull())
    .addColumn('output_tail', t.text, (c) => c.notNull())
    .addColumn('kill_requested_at', t.time)
    .addColumn('lost_reason', 'varchar(1024)')
    .addUniqueConstraint('executions_token_key', ['token_id'])
    .execute();
  await db.schema.createIndex('executions_queue_claimed_idx').on('executions').columns(['queue', 'claimed_at']).execute();
  await db.schema.createIndex('executions_instance_idx').on('executions').column('job_instance_id').execute();
  await db.schema.createIndex('executions_worker_idx').on('executions').column('worker_id').execute();

  await table('execution_histories')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('execution_id', t.id, (c) => c.notNull())
    .addColumn('job_instance_id', t.id, (c) => c.notNull())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('token_id', t.id, (c) => c.notNull())
    .addColumn('queue', 'varchar(255)', (c) => c.notNull())
    .addColumn('shell', t.text, (c) => c.notNull())
    .addColumn('hostname', 'varchar(255)')
    .addColumn('worker_id', t.id)
    .addColumn('pid', 'integer')
    .addColumn('started_at', t.time)
    .addColumn('finished_at', t.time, (c) => c.notNull())
    .addColumn('exit_status', 'smallint')
    .addColumn('term_signal', 'varchar(32)')
    .execute();
  await db.schema
    .createIndex('execution_histories_instance_idx')
    .on('execution_histories')
    .column('job_instance_id')
    .execute();
  await db.schema
    .createIndex('execution_histories_hostname_idx')
    .on('execution_histories')
    .columns(['hostname', 'finished_at'])
    .execute();

  await table('workers')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('hostname', 'varchar(255)', (c) => c.notNull())
    .addColumn('queues', t.text, (c) => c.notNull())
    .addColumn('slots', 'integer', (c) => c.notNull())
    .addColumn('pids', t.text, (c) => c.notNull())
    .addColumn('heartbeat_at', t.time, (c) => c.notNull())
    .addColumn('started_at', t.time, (c) => c.notNull())
    .addColumn('suspended', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('draining', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('workers_hostname_idx').on('workers').column('hostname').execute();

  await table('process_signals')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('execution_id', t.id, (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('signal', 'varchar(32)', (c) => c.notNull())
    .addColumn('reason', 'varchar(1024)', (c) => c.notNull())
    .addColumn('requested_at', t.time, (c) => c.notNull())
    .addColumn('delivered_at', t.time)
    .addColumn('result', 'varchar(1024)')
    .execute();
  await db.schema.createIndex('process_signals_execution_idx').on('process_signals').column('execution_id').execute();
  await db.schema.createIndex('process_signals_delivered_idx').on('process_signals').column('delivered_at').execute();

  await table('instance_logs')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('job_instance_id', t.id, (c) => c.notNull())
    .addColumn('level', 'varchar(16)', (c) => c.notNull())
    .addColumn('message', t.longText, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('instance_logs_instance_idx')
    .on('instance_logs')
    .columns(['job_instance_id', 'created_at'])
    .execute();

  await table('events')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('type', 'varchar(64)', (c) => c.notNull())
    .addColumn('job_instance_id', t.id)
    .addColumn('job_definition_id', t.id)
    .addColumn('token_id', t.id)
    .addColumn('message', t.text, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_created_idx').on('events').column('created_at').execute();
  await db.schema.createIndex('events_instance_idx').on('events').column('job_instance_id').execute();

  await table('event_deliveries')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('event_id', t.id, (c) => c.notNull())
    .addColumn('channel', 'varchar(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.time, (c) => c.notNull())
    .addColumn('delivered_at', t.time)
    .addColumn('last_error', t.text)
    .addUniqueConstraint('event_deliveries_event_channel_key', ['event_id', 'channel'])
    .execute();
  await db.schema
    .createIndex('event_deliveries_due_idx')
    .on('event_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute();

  await table('schedule_slots')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('scheduled_at', t.time, (c) => c.notNull())
    .addColumn('cron', 'varchar(255)', (c) => c.notNull())
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('job_instance_id', t.id)
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('schedule_slots_launch_key', ['job_definition_id', 'scheduled_at'])
    .execute();
  await db.schema.createIndex('schedule_slots_scheduled_idx').on('schedule_slots').column('scheduled_at').execute();

  await table('scheduler_state')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('last_pass_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();

  await table('api_clients')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('secret_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('scope', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('api_clients_name_key', ['name'])
    .execute();

  await table('memory_samples')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('execution_id', t.id, (c) => c.notNull())
    .addColumn('job_instance_id', t.id, (c) => c.notNull())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('rss_kb', 'bigint', (c) => c.notNull())
    .addColumn('sampled_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('memory_samples_execution_idx').on('memory_samples').column('execution_id').execute();
  await db.schema.createIndex('memory_samples_instance_idx').on('memory_samples').column('job_instance_id').execute();

  await table('alerts')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('subject', 'varchar(255)', (c) => c.notNull())
    .addColumn('raised_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('alerts_kind_subject_key', ['kind', 'subject'])
    .execute();

  await table('id_blocks')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('next_id', 'bigint', (c) => c.notNull())
    .execute();
  await db.insertInto('id_blocks').values({ name: GLOBAL_ID_SEQUENCE, next_id: FIRST_ID }).execute();
}

async function down(db: AnyKysely): Promise<void> {
  for (const name of [...TABLES].reverse()) {
    await db.schema.dropTable(name).ifExists().execute();
  }
}

/** Creates every table of the first release. */
export const initialSchema: Migration = { up, down };
