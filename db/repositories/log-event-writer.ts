import type { Kysely, Transaction } from 'kysely';
import type { EventRecord, LogEntry } from '../../core/model';
import type { IdGenerator } from '../../core/ports';
import { ROW_LIMITS, truncateUtf8 } from '../../core/row-limits';
import type { Database } from '../schema';

/** A connection or a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;

/** Appends instance log lines in one statement, each cut to ROW_LIMITS.logMessageBytes (a 64 KB Data API row). */
export async function insertLogs(db: Db, ids: IdGenerator, logs: readonly LogEntry[]): Promise<void> {
  if (logs.length === 0) return;
  const rows = [];
  for (const log of logs) {
    rows.push({ id: await ids.nextId(), job_instance_id: log.instanceId, level: log.level, message: truncateUtf8(log.message, ROW_LIMITS.logMessageBytes), created_at: log.createdAt });
  }
  await db.insertInto('instance_logs').values(rows).execute();
}

/**
 * Writes events to the outbox in one statement; call it inside the transaction of the change they announce. Each
 * message is cut to ROW_LIMITS.eventMessageBytes.
 */
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
        message: truncateUtf8(e.message, ROW_LIMITS.eventMessageBytes),
        created_at: e.createdAt,
      })),
    )
    .execute();
}
