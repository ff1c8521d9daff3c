/**
 * The notifier's store: the events outbox and its delivery rows (`event_deliveries`, unique on (event_id,
 * channel)). Every claim is one statement: an insert that the unique key lets only one notifier win, or an
 * update fenced on the attempt count read before it. No transaction is needed, which keeps the Data API cheap.
 */
import type { Kysely, Updateable } from 'kysely';
import type { EventRecord, EventType, LogEntry, LogLevel } from '../../core/model';
import type { NotificationInput } from '../../core/notify/notification-message';
import { ROW_LIMITS, truncateUtf8 } from '../../core/row-limits';
import {
  DELIVERY_STATUS,
  forEachWithConcurrency,
  type NewDelivery,
  type NotifierStore,
  type PendingDelivery,
} from '../../core/services/notifier-service';
import { fromDbInt, fromDbTime } from '../column-codec';
import { isDuplicateKeyError, isRetryableLockError, retryOnLock } from '../db-errors';
import type { Database, EventRow } from '../schema';
import { DEFINITION_WIDTH, EVENT_WIDTH, INSTANCE_WIDTH, chunked, readByWidth, readInChunks, rowWidths, widthOf } from './paging';
import { toDefinition, toInstance } from './row-mappers';

/** Rows per multi-row insert: well inside every driver's parameter limit. */
const INSERT_CHUNK = 100;
/** Instances whose recent log lines are read at once. */
const LOG_READ_CONCURRENCY = 8;
/** Log lines read per instance for a batch, before each event keeps the last ones up to its own time. */
const LOG_READ_FACTOR = 3;
/** scheduler_state rows holding when each channel was first seen. */
const CHANNEL_EPOCH_PREFIX = 'notifier-channel:';

/** Maps an events row. */
export function toEventRecord(row: EventRow): EventRecord {
  return {
    id: fromDbInt(row.id),
    type: row.type as EventType,
    instanceId: row.job_instance_id === null ? null : fromDbInt(row.job_instance_id),
    definitionId: row.job_definition_id === null ? null : fromDbInt(row.job_definition_id),
    tokenId: row.token_id === null ? null : fromDbInt(row.token_id),
    message: row.message,
    createdAt: fromDbTime(row.created_at),
  };
}

/** The events outbox and its deliveries on the database. */
export class EventDeliveryRepository implements NotifierStore {
  constructor(private readonly db: Kysely<Database>) {}

  async channelEpochs(channels: readonly string[], now: Date, backfillFrom: Date = now): Promise<Map<string, Date>> {
    const names = channels.map((c) => CHANNEL_EPOCH_PREFIX + c);
    const read = async () =>
      this.db.selectFrom('scheduler_state').select(['name', 'last_pass_at']).where('name', 'in', names).execute();
    let rows = await read();
    if (rows.length < names.length) {
      const known = new Set(rows.map((r) => r.name));
      for (const name of names.filter((n) => !known.has(n))) {
        try {
          await this.db.insertInto('scheduler_state').values({ name, last_pass_at: now, updated_at: now }).execute();
        } catch (error) {
          if (!isDuplicateKeyError(error)) throw error;
        }
      }
      // A new channel carries the backfill period's events: they are open again for the notifier.
      await this.db.updateTable('events').set({ notified: 0 }).where('created_at', '>=', backfillFrom).where('notified', '=', 1).execute();
      rows = await read();
    }
    return new Map(rows.map((r) => [r.name.slice(CHANNEL_EPOCH_PREFIX.length), fromDbTime(r.last_pass_at)]));
  }

  async findUndeliveredEvents(channels: readonly string[], since: Date, limit: number): Promise<EventRecord[]> {
    if (channels.length === 0) return [];
    // Only events not yet settled (events_unnotified_idx): the read follows the new events, not the last hour's.
    // Ids and widths first (a hundred events of 16 KiB would pass a Data API response), then the rows.
    const widths = await this.db
      .selectFrom('events')
      .select(['id', widthOf('message').as('wide')])
      .where('notified', '=', 0)
      .where('created_at', '>=', since)
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return (await readByWidth(rowWidths(widths), (ids) => this.db.selectFrom('events').selectAll().where('id', 'in', ids).execute())).map(toEventRecord);
  }

  async markNotified(eventIds: readonly number[]): Promise<void> {
    for (const chunk of chunked(eventIds)) {
      // A mark lost to a deadlock costs one more look at the event next pass (its rows are there by then).
      await whenNotLocked(async () => void (await this.db.updateTable('events').set({ notified: 1 }).where('id', 'in', chunk).execute()), undefined);
    }
  }

  /**
   * The outbox backlog: events created at or after `since` not yet settled on every one of `channels` (a channel
   * with no row yet, or a `pending` row: claimed, or waiting for a retry). Skipped, delivered and failed rows are
   * settled. Two counts by index over the same range the notifier reads.
   */
  async countBacklog(channels: readonly string[], since: Date): Promise<number> {
    if (channels.length === 0) return 0;
    // By index: the events not yet marked notified, and the notified ones with a pending row (claimed or retrying).
    const open = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('notified', '=', 0)
      .where('created_at', '>=', since)
      .executeTakeFirstOrThrow();
    const pending = await this.db
      .selectFrom('event_deliveries as d')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .select((eb) => eb.fn.count('d.event_id').distinct().as('n'))
      .where('d.status', '=', DELIVERY_STATUS.pending)
      .where('d.channel', 'in', [...channels])
      .where('e.notified', '=', 1)
      .where('e.created_at', '>=', since)
      .executeTakeFirstOrThrow();
    return fromDbInt(open.n) + fromDbInt(pending.n);
  }

  async findDeliveryChannels(eventIds: readonly number[], channels: readonly string[]): Promise<Map<number, Set<string>>> {
    const result = new Map<number, Set<string>>();
    if (eventIds.length === 0 || channels.length === 0) return result;
    const rows = await this.db
      .selectFrom('event_deliveries')
      .select(['event_id', 'channel'])
      .where('event_id', 'in', [...eventIds])
      .where('channel', 'in', [...channels])
      .execute();
    for (const row of rows) {
      const id = fromDbInt(row.event_id);
      const set = result.get(id) ?? new Set<string>();
      set.add(row.channel);
      result.set(id, set);
    }
    return result;
  }

  async insertDeliveries(rows: readonly NewDelivery[]): Promise<NewDelivery[]> {
    const inserted: NewDelivery[] = [];
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      try {
        // One statement is atomic on all three engines: either every row is ours or none was written.
        await this.db.insertInto('event_deliveries').values(chunk.map(toRow)).execute();
        inserted.push(...chunk);
      } catch (error) {
        // Another notifier claimed some pairs first (a duplicate, or on InnoDB a deadlock between two
        // overlapping multi-row inserts): claim row by row, keeping the ones we win.
        if (!isDuplicateKeyError(error) && !isRetryableLockError(error)) throw error;
        for (const row of chunk) {
          if (await this.insertOne(row)) inserted.push(row);
        }
      }
    }
    return inserted;
  }

  /** Inserts one delivery row; false when another notifier holds the pair (or kept it locked: next pass). */
  private async insertOne(row: NewDelivery): Promise<boolean> {
    try {
      await retryOnLock(() => this.db.insertInto('event_deliveries').values(toRow(row)).execute());
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error) || isRetryableLockError(error)) return false;
      throw error;
    }
  }

  async findDueDeliveries(channels: readonly string[], now: Date, limit: number): Promise<PendingDelivery[]> {
    if (channels.length === 0) return [];
    const rows = await this.db
      .selectFrom('event_deliveries')
      .select(['id', 'event_id', 'channel', 'attempts'])
      .where('status', '=', DELIVERY_STATUS.pending)
      .where('next_attempt_at', '<=', now)
      .where('channel', 'in', [...channels])
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: fromDbInt(r.id), eventId: fromDbInt(r.event_id), channel: r.channel, attempts: Number(r.attempts) }));
  }

  async reclaimDelivery(delivery: PendingDelivery, now: Date, claimUntil: Date): Promise<boolean> {
    // Two notifiers reclaiming overlapping rows can deadlock on InnoDB: the loser simply did not get the claim.
    return whenNotLocked(() => this.reclaimOnce(delivery, now, claimUntil), false);
  }

  private async reclaimOnce(delivery: PendingDelivery, now: Date, claimUntil: Date): Promise<boolean> {
    const result = await this.db
      .updateTable('event_deliveries')
      .set({ attempts: delivery.attempts + 1, next_attempt_at: claimUntil })
      .where('id', '=', delivery.id)
      .where('status', '=', DELIVERY_STATUS.pending)
      .where('attempts', '=', delivery.attempts)
      .where('next_attempt_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async markDelivered(deliveryId: number, at: Date): Promise<boolean> {
    return this.settle(deliveryId, { status: DELIVERY_STATUS.delivered, delivered_at: at, last_error: null });
  }

  async markRetry(deliveryId: number, attempt: number, nextAttemptAt: Date, error: string): Promise<boolean> {
    return this.settle(deliveryId, { next_attempt_at: nextAttemptAt, last_error: truncateUtf8(error, ROW_LIMITS.deliveryErrorBytes) }, attempt);
  }

  async markFailed(deliveryId: number, attempt: number, error: string): Promise<boolean> {
    return this.settle(deliveryId, { status: DELIVERY_STATUS.failed, last_error: truncateUtf8(error, ROW_LIMITS.deliveryErrorBytes) }, attempt);
  }

  /** Updates a pending delivery (fenced on its attempt when given); false when it is no longer ours. */
  private settle(deliveryId: number, set: Updateable<Database['event_deliveries']>, attempt?: number): Promise<boolean> {
    return retryOnLock(async () => {
      let query = this.db.updateTable('event_deliveries').set(set).where('id', '=', deliveryId).where('status', '=', DELIVERY_STATUS.pending);
      if (attempt !== undefined) query = query.where('attempts', '=', attempt);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    });
  }

  async findEvents(eventIds: readonly number[]): Promise<EventRecord[]> {
    const rows = await readInChunks(eventIds, async (chunk) => {
      const widths = rowWidths(await this.db.selectFrom('events').select(['id', EVENT_WIDTH.as('wide')]).where('id', 'in', chunk).execute());
      return readByWidth(widths, (ids) => this.db.selectFrom('events').selectAll().where('id', 'in', ids).execute());
    });
    return rows.map(toEventRecord);
  }

  async loadInputs(events: readonly EventRecord[]): Promise<Map<number, NotificationInput>> {
    const definitionIds = unique(events.map((e) => e.definitionId));
    const instanceIds = unique(events.map((e) => e.instanceId));
    // Descriptions and scripts make these rows wide: ids and widths first, then chunks that fit a response.
    const [definitionRows, instanceRows] = await Promise.all([
      readInChunks(definitionIds, async (chunk) => {
        const widths = rowWidths(await this.db.selectFrom('job_definitions').select(['id', DEFINITION_WIDTH.as('wide')]).where('id', 'in', chunk).execute());
        return readByWidth(widths, (ids) => this.db.selectFrom('job_definitions').selectAll().where('id', 'in', ids).execute());
      }),
      readInChunks(instanceIds, async (chunk) => {
        const widths = rowWidths(await this.db.selectFrom('job_instances').select(['id', INSTANCE_WIDTH.as('wide')]).where('id', 'in', chunk).execute());
        return readByWidth(widths, (ids) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', ids).execute());
      }),
    ]);
    const definitions = new Map(definitionRows.map((r) => [fromDbInt(r.id), toDefinition(r)]));
    const instances = new Map(instanceRows.map((r) => [fromDbInt(r.id), toInstance(r)]));
    const inputs = new Map<number, NotificationInput>();
    for (const event of events) {
      inputs.set(event.id, {
        event,
        definition: event.definitionId === null ? undefined : definitions.get(event.definitionId),
        instance: event.instanceId === null ? undefined : instances.get(event.instanceId),
        recentLogs: [],
      });
    }
    return inputs;
  }

  async loadRecentLogs(events: readonly EventRecord[], lines: number): Promise<Map<number, LogEntry[]>> {
    const logs = await this.instanceLogs(events, lines);
    const byEvent = new Map<number, LogEntry[]>();
    for (const event of events) {
      const instanceLogs = event.instanceId === null ? [] : (logs.get(event.instanceId) ?? []);
      byEvent.set(event.id, instanceLogs.filter((l) => l.createdAt.getTime() <= event.createdAt.getTime()).slice(-lines));
    }
    return byEvent;
  }

  /** The last log lines of each instance up to its latest event in the batch, oldest first, by instance id. */
  private async instanceLogs(events: readonly EventRecord[], lines: number): Promise<Map<number, LogEntry[]>> {
    const latest = new Map<number, Date>();
    for (const e of events) {
      if (e.instanceId === null) continue;
      const seen = latest.get(e.instanceId);
      if (!seen || seen < e.createdAt) latest.set(e.instanceId, e.createdAt);
    }
    const result = new Map<number, LogEntry[]>();
    const readOne = async ([instanceId, until]: [number, Date]) => {
      // A log line may hold 40 KiB: ids and widths first, then the lines in chunks that fit a response.
      const widths = await this.db
        .selectFrom('instance_logs')
        .select(['id', widthOf('message').as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('created_at', '<=', until)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(lines * LOG_READ_FACTOR)
        .execute();
      const rows = await readByWidth(rowWidths(widths), (ids) =>
        this.db.selectFrom('instance_logs').select(['level', 'message', 'created_at', 'id']).where('id', 'in', ids).execute(),
      );
      result.set(
        instanceId,
        rows.reverse().map((r) => ({ instanceId, level: r.level as LogLevel, message: r.message, createdAt: fromDbTime(r.created_at) })),
      );
    };
    // A few at a time: each is a round trip (tens of ms on the Data API), and they are independent.
    await forEachWithConcurrency([...latest], LOG_READ_CONCURRENCY, readOne);
    return result;
  }
}

function toRow(row: NewDelivery) {
  return {
    id: row.id,
    event_id: row.eventId,
    channel: row.channel,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt,
    delivered_at: null,
    last_error: null,
  };
}

function unique(values: readonly (number | null)[]): number[] {
  return [...new Set(values.filter((v): v is number => v !== null))];
}

/** Runs a single-statement write, answering `fallback` when InnoDB chose it as a deadlock victim. */
async function whenNotLocked<T>(write: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isRetryableLockError(error)) return fallback;
    throw error;
  }
}

