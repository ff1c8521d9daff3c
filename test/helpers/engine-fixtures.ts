/** Builders shared by database-backed engine tests: definitions, a stand-in agent, and readers of outcomes. */
import type { Insertable, Kysely } from 'kysely';
import type { Definition } from '../../core/model';
import { instanceStatus, type InstanceStatus } from '../../core/model';
import { fromDbTime } from '../../db/column-codec';
import type { Database } from '../../db/schema';
import { createEngineServices, type EngineServices, type EngineServicesOptions } from '../../app/engine-services';
import type { TestDatabase } from './test-database';
import { toInstance } from '../../db/repositories/row-mappers';

/** Engine services over a test database. */
export function servicesFor(tdb: TestDatabase, options: EngineServicesOptions = {}): EngineServices {
  return createEngineServices(
    { db: tdb.db, dialect: tdb.dialect, capabilities: tdb.capabilities, close: async () => undefined },
    { ids: tdb.idGenerator, ...options },
  );
}

/** A job_definitions row with Kuroko2's defaults, for bulk inserts; `insertDefinition` writes one with its schedules. */
export function definitionRow(id: number, script: string, options: Partial<Definition> = {}): Insertable<Database['job_definitions']> {
  const at = options.createdAt ?? new Date('2026-01-01T00:00:00.000Z');
  return {
    id,
    name: options.name ?? `job ${id}`,
    description: options.description ?? '',
    script,
    time_zone: options.timeZone ?? 'UTC',
    suspended: options.suspended ?? false,
    prevent_multi: options.preventMulti ?? 0,
    notify_cancellation: options.notifyCancellation ?? true,
    notify_all: options.notifyAll ?? false,
    api_allowed: options.apiAllowed ?? true,
    slack_channel: '',
    webhook_url: options.webhookUrl ?? null,
    catch_up_window_minutes: options.catchUpWindowMinutes ?? 60,
    version: 0,
    created_at: at,
    updated_at: at,
  };
}

/** Inserts a definition with Kuroko2's defaults and the given schedules. */
export async function insertDefinition(
  db: Kysely<Database>,
  id: number,
  script: string,
  options: Partial<Definition> & { crons?: string[]; suspendCrons?: string[] } = {},
): Promise<void> {
  const at = options.createdAt ?? new Date('2026-01-01T00:00:00.000Z');
  await db.insertInto('job_definitions').values(definitionRow(id, script, options)).execute();
  let scheduleId = id * 1000;
  for (const cron of options.crons ?? []) {
    await db.insertInto('job_schedules').values({ id: scheduleId++, job_definition_id: id, cron, created_at: at }).execute();
  }
  for (const cron of options.suspendCrons ?? []) {
    await db.insertInto('job_suspend_schedules').values({ id: scheduleId++, job_definition_id: id, cron, created_at: at }).execute();
  }
}

/**
 * Plays an agent without processes: claims every unclaimed execution and finishes it with the exit status
 * `exitFor` gives for its command. Returns how many it finished.
 */
export async function finishExecutionsAsAgent(
  db: Kysely<Database>,
  exitFor: (shell: string) => number = () => 0,
  output = '',
): Promise<number> {
  const rows = await db.selectFrom('executions').select(['id', 'shell', 'attempt']).where('finished_at', 'is', null).execute();
  const now = new Date();
  for (const row of rows) {
    await db
      .updateTable('executions')
      .set({
        attempt: Number(row.attempt) + 1,
        claimed_at: now,
        started_at: now,
        pid: 4242,
        hostname: 'test-host',
        finished_at: now,
        exit_status: exitFor(row.shell),
        output_head: output,
      })
      .where('id', '=', row.id)
      .execute();
  }
  return rows.length;
}

/** Runs processor passes (finishing commands between them) until nothing moves; returns the passes run. */
export async function runUntilIdle(services: EngineServices, exitFor: (shell: string) => number = () => 0, limit = 100): Promise<number> {
  for (let pass = 1; pass <= limit; pass++) {
    const result = await services.processorPass();
    const finished = await finishExecutionsAsAgent(services.handle.db, exitFor);
    if (result.committed === 0 && finished === 0) return pass;
  }
  throw new Error(`still busy after ${limit} passes`);
}

export async function statusOf(db: Kysely<Database>, instanceId: number): Promise<InstanceStatus> {
  const row = await db.selectFrom('job_instances').selectAll().where('id', '=', instanceId).executeTakeFirstOrThrow();
  return instanceStatus(toInstance(row));
}

export async function eventTypes(db: Kysely<Database>, instanceId: number): Promise<string[]> {
  const rows = await db.selectFrom('events').select(['type', 'created_at', 'id']).where('job_instance_id', '=', instanceId).execute();
  return rows
    .sort((a, b) => fromDbTime(a.created_at).getTime() - fromDbTime(b.created_at).getTime() || Number(a.id) - Number(b.id))
    .map((r) => r.type);
}

export async function logMessages(db: Kysely<Database>, instanceId: number): Promise<string[]> {
  const rows = await db.selectFrom('instance_logs').select(['message', 'created_at', 'id']).where('job_instance_id', '=', instanceId).execute();
  return rows
    .sort((a, b) => fromDbTime(a.created_at).getTime() - fromDbTime(b.created_at).getTime() || Number(a.id) - Number(b.id))
    .map((r) => r.message);
}

