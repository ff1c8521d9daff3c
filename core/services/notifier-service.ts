/**
 * The notifier: delivers the events outbox to every channel, at least once, and each event to a channel once
 * when nothing crashes. It runs as its own pass, apart from the engine, so a slow or dead channel never holds a
 * token back.
 *
 * Delivery rows (`event_deliveries`, unique on (event, channel)) are the claims:
 * - a new (event, channel) pair is claimed by inserting its row as `pending` with `attempts = 1` and
 *   `next_attempt_at = now + claimTimeout`; the unique key lets exactly one notifier insert it. Pairs the gating
 *   rules exclude get a `skipped` row, so the decision is taken once and the event leaves the backlog;
 * - a `pending` row whose `next_attempt_at` has passed (a scheduled retry, or a claim whose notifier died) is
 *   taken by one conditional update that bumps `attempts` from the value read (the fence), so two notifiers
 *   never both take it;
 * - after sending: `delivered`; on error the row is rescheduled with capped exponential backoff and
 *   `last_error`, fenced on its attempt, or `failed` after `maxAttempts`.
 *
 * The at-least-once edge: a notifier that dies (or stalls past its claim) after the receiver accepted a message
 * but before marking the row leaves it `pending`; once the claim expires another notifier sends it again. Every
 * attempt of one (event, channel) pair carries the same delivery key (`X-Kuroko2-Id` on webhooks), so a receiver
 * can drop the repeat. A notifier never starts a send when less than `sendTimeoutMs` of its claim is left, which
 * keeps a slow pass from overlapping the next claimant.
 */
import type { EventRecord, LogEntry } from '../model';
import type { Clock, IdGenerator } from '../ports';
import { deliveryKeyOf, type NotificationChannel } from '../notify/notification-channel';
import type { NotificationInput } from '../notify/notification-message';
import { channelCarries, showsRecentLogs } from '../notify/notification-rules';
import { describeError } from '../errors';

export const DELIVERY_STATUS = { pending: 'pending', delivered: 'delivered', failed: 'failed', skipped: 'skipped' } as const;
export type DeliveryStatus = (typeof DELIVERY_STATUS)[keyof typeof DELIVERY_STATUS];

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** Characters of an error message kept in `last_error`. */
export const MAX_ERROR_LENGTH = 1_000;

export interface NotifierSettings {
  /** Events (and due retries) taken per pass. */
  batchSize: number;
  /** How long a claim is held before another notifier may retry it (a crashed notifier's claims come back). */
  claimTimeoutMs: number;
  /** The longest one send may take (channels enforce it); no send starts with less claim than this left. */
  sendTimeoutMs: number;
  /** First retry delay; doubles per attempt up to `backoffCapMs`. */
  backoffBaseMs: number;
  backoffCapMs: number;
  /** Attempts before a delivery is given up as `failed`. */
  maxAttempts: number;
  /** Sends in flight per channel. */
  concurrency: number;
  /** Log lines of the instance carried by mail-like messages. */
  recentLogLines: number;
  /** Events older than this are never picked up (bounds the backlog scan; a notifier down longer loses them). */
  maxEventAgeMs: number;
  /** A channel seen for the first time also carries the events of this period before, and none older. */
  channelBackfillMs: number;
}

export const DEFAULT_NOTIFIER_SETTINGS: NotifierSettings = {
  batchSize: 100,
  claimTimeoutMs: 2 * MINUTE_MS,
  sendTimeoutMs: 10 * SECOND_MS,
  backoffBaseMs: 10 * SECOND_MS,
  backoffCapMs: 30 * MINUTE_MS,
  // 10 s doubling to the 30 min cap: about nine hours of retries before giving up.
  maxAttempts: 25,
  concurrency: 4,
  recentLogLines: 10,
  maxEventAgeMs: 7 * DAY_MS,
  channelBackfillMs: HOUR_MS,
};

/** A delivery row to insert. */
export interface NewDelivery {
  id: number;
  eventId: number;
  channel: string;
  status: typeof DELIVERY_STATUS.pending | typeof DELIVERY_STATUS.skipped;
  attempts: number;
  nextAttemptAt: Date;
}

/** A pending delivery as read from the store. */
export interface PendingDelivery {
  id: number;
  eventId: number;
  channel: string;
  attempts: number;
}

/** The notifier's view of the store. */
export interface NotifierStore {
  /**
   * When each channel was first seen by a notifier (recorded now for new ones): events created before that minus
   * the backfill period never go to it, so enabling a channel does not replay history.
   */
  channelEpochs(channels: readonly string[], now: Date, backfillFrom?: Date): Promise<Map<string, Date>>;
  /**
   * Events created at or after `since` not yet marked notified (a delivery row may be missing for one of
   * `channels`), oldest first. Settled events are not read again. A new channel reopens those created at or after
   * `backfillFrom` (channelEpochs).
   */
  findUndeliveredEvents(channels: readonly string[], since: Date, limit: number): Promise<EventRecord[]>;
  /** Marks events as having a delivery row on every channel: findUndeliveredEvents skips them from now on. */
  markNotified(eventIds: readonly number[]): Promise<void>;
  /** The channels (of those given) that already have a delivery row, per event. */
  findDeliveryChannels(eventIds: readonly number[], channels: readonly string[]): Promise<Map<number, Set<string>>>;
  /** Inserts the rows; answers those this call inserted (a pair another notifier inserted first is left out). */
  insertDeliveries(rows: readonly NewDelivery[]): Promise<NewDelivery[]>;
  /** Pending deliveries on these channels whose next attempt is due, oldest first. */
  findDueDeliveries(channels: readonly string[], now: Date, limit: number): Promise<PendingDelivery[]>;
  /** Takes a due delivery for one more attempt; false when another notifier took it first. */
  reclaimDelivery(delivery: PendingDelivery, now: Date, claimUntil: Date): Promise<boolean>;
  /** Marks a pending delivery delivered (whoever holds it now: it did reach the channel). */
  markDelivered(deliveryId: number, at: Date): Promise<boolean>;
  /** Schedules the next attempt, fenced on the attempt that failed. */
  markRetry(deliveryId: number, attempt: number, nextAttemptAt: Date, error: string): Promise<boolean>;
  /** Gives the delivery up, fenced on the attempt that failed. */
  markFailed(deliveryId: number, attempt: number, error: string): Promise<boolean>;
  findEvents(eventIds: readonly number[]): Promise<EventRecord[]>;
  /** What channels need to announce each event: its definition and instance (no log lines yet), by event id. */
  loadInputs(events: readonly EventRecord[]): Promise<Map<number, NotificationInput>>;
  /** The last `lines` log lines of each event's instance up to the event, oldest first, by event id. */
  loadRecentLogs(events: readonly EventRecord[], lines: number): Promise<Map<number, LogEntry[]>>;
}

export interface NotifierDeps {
  store: NotifierStore;
  channels: readonly NotificationChannel[];
  clock: Clock;
  ids: IdGenerator;
  settings?: Partial<NotifierSettings>;
  /** Told about each failed attempt (logging); never throws into the pass. */
  onError?: (error: unknown, context: { eventId: number; channel: string; attempt: number }) => void;
}

export interface NotifierPassResult {
  /** Deliveries this pass took (new claims and retries). */
  claimed: number;
  delivered: number;
  /** Failed attempts rescheduled. */
  retried: number;
  /** Deliveries given up after the last attempt. */
  failed: number;
  /** (event, channel) pairs the gating rules exclude, recorded once. */
  skipped: number;
  /** Claims not sent because too little of the claim was left; they come back when it expires. */
  deferred: number;
  /**
   * Reads that came back a full batch (due retries, new events): more may be waiting right away. A pass that read
   * less has seen everything announced before it began; what was announced during it comes with its own nudge.
   */
  fullBatches: number;
}

/** The delay before attempt `attempt + 1` after attempt `attempt` failed: doubling from the base, capped. */
export function retryDelayMs(attempt: number, settings: Pick<NotifierSettings, 'backoffBaseMs' | 'backoffCapMs'>): number {
  const exponent = Math.max(0, attempt - 1);
  // Past 2^30 the product overflows any sane cap; stop doubling there.
  const MAX_EXPONENT = 30;
  return Math.min(settings.backoffCapMs, settings.backoffBaseMs * 2 ** Math.min(exponent, MAX_EXPONENT));
}

interface Work {
  deliveryId: number;
  eventId: number;
  channel: NotificationChannel;
  attempt: number;
}

/** Where the notifier looks for new events: per channel, and over all of them. */
export interface ChannelScanStart {
  /** Per channel, the creation time (epoch ms) from which its events are carried. */
  starts: Map<string, number>;
  /** The earliest of them: the scan (and the backlog count) covers events created at or after it. */
  since: Date;
}

/**
 * Each channel carries events from its first sighting (recorded now for a new one) less the backfill period, never
 * older than the event age limit. The pass scans from the earliest; the backlog metric counts over the same range.
 */
export async function channelScanStart(
  store: Pick<NotifierStore, 'channelEpochs'>,
  names: readonly string[],
  now: Date,
  settings: Pick<NotifierSettings, 'maxEventAgeMs' | 'channelBackfillMs'>,
): Promise<ChannelScanStart> {
  if (names.length === 0) return { starts: new Map(), since: now };
  const epochs = await store.channelEpochs(names, now, new Date(now.getTime() - settings.channelBackfillMs));
  const horizon = now.getTime() - settings.maxEventAgeMs;
  const starts = new Map(names.map((n) => [n, Math.max(horizon, (epochs.get(n) ?? now).getTime() - settings.channelBackfillMs)]));
  return { starts, since: new Date(Math.min(...starts.values())) };
}

/** One notifier pass: takes due retries and new events, sends them channel by channel, records each outcome. */
export async function runNotifierPass(deps: NotifierDeps): Promise<NotifierPassResult> {
  const settings = { ...DEFAULT_NOTIFIER_SETTINGS, ...deps.settings };
  const { store, clock, ids } = deps;
  const result: NotifierPassResult = { claimed: 0, delivered: 0, retried: 0, failed: 0, skipped: 0, deferred: 0, fullBatches: 0 };
  const byName = new Map(deps.channels.map((c) => [c.name, c]));
  const names = [...byName.keys()];
  if (names.length === 0) return result;

  const now = clock.now();
  const claimUntil = new Date(now.getTime() + settings.claimTimeoutMs);
  const work: Work[] = [];

  const dueDeliveries = await store.findDueDeliveries(names, now, settings.batchSize);
  if (dueDeliveries.length >= settings.batchSize) result.fullBatches++;
  for (const due of dueDeliveries) {
    const channel = byName.get(due.channel);
    if (channel && (await store.reclaimDelivery(due, now, claimUntil))) {
      work.push({ deliveryId: due.id, eventId: due.eventId, channel, attempt: due.attempts + 1 });
    }
  }

  const { starts, since } = await channelScanStart(store, names, now, settings);
  const events = await store.findUndeliveredEvents(names, since, settings.batchSize);
  if (events.length >= settings.batchSize) result.fullBatches++;
  const existing = await store.findDeliveryChannels(events.map((e) => e.id), names);

  const retriedEventIds = work.map((w) => w.eventId).filter((id) => !events.some((e) => e.id === id));
  const allEvents = [...events, ...(retriedEventIds.length > 0 ? await store.findEvents([...new Set(retriedEventIds)]) : [])];
  const inputs = await store.loadInputs(allEvents);

  const rows: NewDelivery[] = [];
  for (const event of events) {
    const input = inputs.get(event.id);
    const has = existing.get(event.id) ?? new Set<string>();
    for (const channel of deps.channels) {
      if (has.has(channel.name)) continue;
      const carried =
        input !== undefined &&
        event.createdAt.getTime() >= (starts.get(channel.name) ?? 0) &&
        channelCarries(channel.kind, event, input.definition);
      rows.push({
        id: await ids.nextId(),
        eventId: event.id,
        channel: channel.name,
        status: carried ? DELIVERY_STATUS.pending : DELIVERY_STATUS.skipped,
        attempts: carried ? 1 : 0,
        nextAttemptAt: carried ? claimUntil : now,
      });
    }
  }
  const inserted = await store.insertDeliveries(rows);
  // An event is settled once each channel has its row: those this pass inserted and those that were there. A pair
  // another notifier won, or left locked, keeps its event open for the next pass to check again.
  const written = new Set(inserted.map((r) => r.id));
  const open = new Set(rows.filter((r) => !written.has(r.id)).map((r) => r.eventId));
  await store.markNotified(events.filter((e) => !open.has(e.id)).map((e) => e.id));
  for (const row of inserted) {
    if (row.status === DELIVERY_STATUS.skipped) {
      result.skipped++;
      continue;
    }
    const channel = byName.get(row.channel);
    if (channel) work.push({ deliveryId: row.id, eventId: row.eventId, channel, attempt: row.attempts });
  }
  result.claimed = work.length;
  await addRecentLogs(work, allEvents, inputs, store, settings.recentLogLines);

  const perChannel = new Map<string, Work[]>();
  for (const w of work) perChannel.set(w.channel.name, [...(perChannel.get(w.channel.name) ?? []), w]);
  await Promise.all(
    [...perChannel.values()].map((list) =>
      forEachWithConcurrency(list, settings.concurrency, (w) => deliverOne(w, inputs.get(w.eventId), deps, settings, claimUntil, result)),
    ),
  );
  return result;
}

/**
 * Reads the last log lines only for the events some claimed delivery will show them in (the mail-like channel):
 * each instance's lines are one more read, a round trip on the Data API, and most events are gated off that channel.
 */
async function addRecentLogs(
  work: readonly Work[],
  events: readonly EventRecord[],
  inputs: Map<number, NotificationInput>,
  store: NotifierStore,
  lines: number,
): Promise<void> {
  if (lines <= 0) return;
  const wanted = new Set(work.filter((w) => showsRecentLogs(w.channel.kind)).map((w) => w.eventId));
  const withInstance = events.filter((e) => wanted.has(e.id) && e.instanceId !== null);
  if (withInstance.length === 0) return;
  for (const [eventId, recentLogs] of await store.loadRecentLogs(withInstance, lines)) {
    const input = inputs.get(eventId);
    if (input) inputs.set(eventId, { ...input, recentLogs });
  }
}

async function deliverOne(
  w: Work,
  input: NotificationInput | undefined,
  deps: NotifierDeps,
  settings: NotifierSettings,
  claimUntil: Date,
  result: NotifierPassResult,
): Promise<void> {
  const { store, clock } = deps;
  if (clock.now().getTime() > claimUntil.getTime() - settings.sendTimeoutMs) {
    result.deferred++;
    return;
  }
  let failure: unknown;
  try {
    // An event removed from the outbox (purged) has nothing left to say: give it up instead of retrying forever.
    if (!input) throw new GiveUp(`event ${w.eventId} no longer exists`);
    await w.channel.send({ input, deliveryKey: deliveryKeyOf(w.eventId, w.channel.name), attempt: w.attempt });
  } catch (error) {
    failure = error ?? new Error('channel failed without an error');
  }
  if (failure === undefined) {
    // A mark that fails would have the event sent again once the claim expires: a transient store error (a dropped
    // call, a 5xx) is tried again at once, the update being idempotent (pending to delivered). One that persists
    // fails the pass like a crash would: the claim expires and the event is sent again (the at-least-once edge).
    await markDelivered(store, w.deliveryId, clock.now());
    result.delivered++;
    return;
  }
  deps.onError?.(failure, { eventId: w.eventId, channel: w.channel.name, attempt: w.attempt });
  const message = errorText(failure);
  if (failure instanceof GiveUp || w.attempt >= settings.maxAttempts) {
    await store.markFailed(w.deliveryId, w.attempt, message);
    result.failed++;
  } else {
    const next = new Date(clock.now().getTime() + retryDelayMs(w.attempt, settings));
    await store.markRetry(w.deliveryId, w.attempt, next, message);
    result.retried++;
  }
}

/** Attempts at marking a sent delivery before the pass fails. */
const MARK_DELIVERED_ATTEMPTS = 3;

async function markDelivered(store: NotifierStore, deliveryId: number, at: Date): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.markDelivered(deliveryId, at);
      return;
    } catch (error) {
      if (attempt >= MARK_DELIVERED_ATTEMPTS) throw error;
    }
  }
}

class GiveUp extends Error {}

function errorText(error: unknown): string {
  const text = describeError(error);
  return text.length > MAX_ERROR_LENGTH ? text.slice(0, MAX_ERROR_LENGTH) : text;
}

/** Runs `fn` over the items with at most `limit` calls in flight. */
export async function forEachWithConcurrency<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}
