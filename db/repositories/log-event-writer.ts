import type { Kysely, Transaction } from 'kysely';
import type { EventRecord, LogEntry } from '../../core/model';
import type { IdGenerator } from '../../core/ports';
import type { Database } from '../schema';

/** A connection or a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;

/** Appends instance log lines in one statement. */
export async function insertLogs(db: Db, ids: IdGenerator, logs: readonly LogEntry[]): Promise<void> {
  if (logs.length === 0) return;
  const rows = [];
  for (const log of logs) {
    rows.push({ id: await ids.nextId(), job_instance_id: log.instanceId, level: log.level, message: log.message, created_at: log.createdAt });
  }
  await db.insertInto('instance_logs').values(rows).execute();
}

/** Writes events to the outbox in one statement; call it inside the transaction of the change they announce. */
export async function insertEvents(db: Db, events: readonly EventRecord[]): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto('events')
    .values(
      events.map((e) => ({
        id: e.id,
        type: e.type,
        job_instance_id: e.instanceId,
        job_definition_id: e.definitionId,
        token_id: e.tokenId,
        message: e.message,
        created_at: e.createdAt,
      })),
    )
    .execute();
}
