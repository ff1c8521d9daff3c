/**
 * Which event goes to which kind of channel (spec section 7, Kuroko2's gating table in reference 3.7), and the
 * level each event is announced with. Pure: the notifier asks these questions once per (event, channel) and
 * records the answer, so a definition edited later does not change what was already decided.
 */
import { EVENT_TYPE, type Definition, type EventRecord, type EventType } from '../model';

/** The kinds of notification channel. The kind decides the gating; a channel's name keys its delivery rows. */
export const CHANNEL_KIND = {
  /** The alert topic: the mail-like channel (email subscriptions), filterable by message attributes. */
  sns: 'sns',
  /** Slack incoming webhook: a chat channel, needs a global webhook URL and the definition's slack_channel. */
  slack: 'slack',
  /** The definition's own webhook URL. */
  webhook: 'webhook',
  /** The local mode's console log: every event, so the person at the terminal sees what the others would. */
  console: 'console',
} as const;
export type ChannelKind = (typeof CHANNEL_KIND)[keyof typeof CHANNEL_KIND];

/** Whether a channel's message shows the instance's last log lines: only the mail-like one does; the others link. */
export function showsRecentLogs(kind: ChannelKind): boolean {
  return kind === CHANNEL_KIND.sns;
}

/** Kuroko2's notification levels (Slack colours and webhook `level` follow them). */
export const NOTIFICATION_LEVEL = {
  info: 'INFO',
  success: 'SUCCESS',
  warning: 'WARNING',
  failure: 'FAILURE',
  critical: 'CRITICAL',
} as const;
export type NotificationLevel = (typeof NOTIFICATION_LEVEL)[keyof typeof NOTIFICATION_LEVEL];

/** The monitor's own events (they carry the monitor's alert kind as their type). */
export const MONITOR_EVENT_TYPES: ReadonlySet<EventType> = new Set([
  EVENT_TYPE.notAssigned,
  EVENT_TYPE.processAbsence,
  EVENT_TYPE.workerLost,
  EVENT_TYPE.missedSlot,
  EVENT_TYPE.remindFailure,
  EVENT_TYPE.memoryExceeded,
]);

/** Events chat and webhook channels always carry. */
const ALWAYS_TO_CHAT: ReadonlySet<EventType> = new Set([
  EVENT_TYPE.failure,
  EVENT_TYPE.critical,
  EVENT_TYPE.backToNormal,
  EVENT_TYPE.longElapsedTime,
]);

/** Events chat and webhook channels carry only with "notify all events". */
const ONLY_WITH_NOTIFY_ALL: ReadonlySet<EventType> = new Set([
  EVENT_TYPE.launch,
  EVENT_TYPE.retrying,
  EVENT_TYPE.skipping,
  EVENT_TYPE.finished,
]);

/** Events the mail-like channel always carries (cancellation depends on the definition). */
const ALWAYS_TO_MAIL: ReadonlySet<EventType> = new Set([
  EVENT_TYPE.failure,
  EVENT_TYPE.critical,
  EVENT_TYPE.longElapsedTime,
  ...MONITOR_EVENT_TYPES,
]);

const LEVELS: Record<EventType, NotificationLevel> = {
  launch: NOTIFICATION_LEVEL.info,
  retrying: NOTIFICATION_LEVEL.info,
  skipping: NOTIFICATION_LEVEL.info,
  cancellation: NOTIFICATION_LEVEL.warning,
  failure: NOTIFICATION_LEVEL.failure,
  critical: NOTIFICATION_LEVEL.critical,
  finished: NOTIFICATION_LEVEL.success,
  back_to_normal: NOTIFICATION_LEVEL.success,
  long_elapsed_time: NOTIFICATION_LEVEL.warning,
  not_assigned: NOTIFICATION_LEVEL.critical,
  process_absence: NOTIFICATION_LEVEL.critical,
  worker_lost: NOTIFICATION_LEVEL.critical,
  missed_slot: NOTIFICATION_LEVEL.warning,
  remind_failure: NOTIFICATION_LEVEL.warning,
  memory_exceeded: NOTIFICATION_LEVEL.warning,
};

/** The level an event is announced with. */
export function levelOf(type: EventType): NotificationLevel {
  return LEVELS[type];
}

/** The definition flags the gating reads. */
export type GatingDefinition = Pick<Definition, 'notifyAll' | 'notifyCancellation' | 'slackChannel' | 'webhookUrl'>;

/** Chat and webhook rule of section 7, before the channel's own requirements (a channel name, a URL). */
function chatCarries(type: EventType, definition: GatingDefinition): boolean {
  if (ALWAYS_TO_CHAT.has(type)) return true;
  if (ONLY_WITH_NOTIFY_ALL.has(type)) return definition.notifyAll;
  if (type === EVENT_TYPE.cancellation) return definition.notifyCancellation || definition.notifyAll;
  return false;
}

/**
 * True when a channel of this kind carries the event. `definition` is the event's definition (undefined when the
 * event has none or it was deleted: chat and webhook then have nowhere to go).
 */
export function channelCarries(
  kind: ChannelKind,
  event: Pick<EventRecord, 'type' | 'instanceId'>,
  definition: GatingDefinition | undefined,
): boolean {
  switch (kind) {
    case CHANNEL_KIND.console:
      return true;
    case CHANNEL_KIND.sns:
      if (ALWAYS_TO_MAIL.has(event.type)) return true;
      return event.type === EVENT_TYPE.cancellation && definition !== undefined && definition.notifyCancellation;
    case CHANNEL_KIND.slack:
      // Monitor alerts are mail-only as in Kuroko2; what they cause (a failed token) reaches chat as `failure`.
      if (!definition || definition.slackChannel.trim() === '') return false;
      return chatCarries(event.type, definition);
    case CHANNEL_KIND.webhook:
      if (!definition || !definition.webhookUrl) return false;
      // A monitor alert reaches a definition's webhook only when it concerns one of its instances.
      if (MONITOR_EVENT_TYPES.has(event.type)) return event.instanceId !== null;
      return chatCarries(event.type, definition);
  }
}
