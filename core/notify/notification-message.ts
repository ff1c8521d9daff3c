/**
 * What a notification says, per channel: Kuroko2's texts (reference 3.7), its Slack attachment and webhook body,
 * and for the mail-like channel a subject and body a person can act on (job, what happened, the last log lines,
 * a link, and what to do next). Pure: channels turn these values into requests.
 */
import { trimBaseUrl } from '../urls';
import { EVENT_TYPE, instanceStatus, type Definition, type EventRecord, type EventType, type Instance, type LogEntry } from '../model';
import { levelOf, NOTIFICATION_LEVEL, type NotificationLevel } from './notification-rules';

/** Everything a channel needs to announce one event. */
export interface NotificationInput {
  event: EventRecord;
  /** The event's definition, if it has one and it still exists. */
  definition: Definition | undefined;
  /** The event's instance, if it has one and it still exists. */
  instance: Instance | undefined;
  /** The instance's last log lines up to the event, oldest first. */
  recentLogs: readonly LogEntry[];
}

/** Where the console (and so every link) lives. */
export interface LinkSettings {
  /** Base URL of the web console, without a trailing slash, e.g. `https://kuroko.example.com`. */
  baseUrl: string;
}

/** SNS allows subjects shorter than 100 characters, on one line. */
export const MAX_SUBJECT_LENGTH = 99;
/** SNS messages are at most 256 KB; the body stays well below so attributes and encoding fit. */
export const MAX_MAIL_BODY_LENGTH = 200_000;
/** One log line in a mail body is cut here: an output block can be huge, the link leads to all of it. */
export const MAX_LOG_LINE_LENGTH = 4_000;

const ELLIPSIS = '…';

/** The job's name as people know it, or its number when the definition is gone. */
export function jobName(input: Pick<NotificationInput, 'definition' | 'event'>): string {
  if (input.definition) return input.definition.name;
  if (input.event.definitionId !== null) return `job definition #${input.event.definitionId}`;
  return 'kuroko';
}

/** Link to the definition's page. */
export function definitionUrl(links: LinkSettings, definitionId: number): string {
  return `${trimBaseUrl(links.baseUrl)}/definitions/${definitionId}`;
}

/** Link to the instance's page (Kuroko2's route: `/definitions/:id/instances/:iid`). */
export function instanceUrl(links: LinkSettings, definitionId: number, instanceId: number): string {
  return `${definitionUrl(links, definitionId)}/instances/${instanceId}`;
}

/** The most specific page an event links to: its instance, else its definition, else the console's home. */
export function eventUrl(links: LinkSettings, event: Pick<EventRecord, 'definitionId' | 'instanceId'>): string {
  if (event.definitionId !== null && event.instanceId !== null) return instanceUrl(links, event.definitionId, event.instanceId);
  if (event.definitionId !== null) return definitionUrl(links, event.definitionId);
  return `${trimBaseUrl(links.baseUrl)}/`;
}

/** Kuroko2's chat text (ChatMessageBuilder) for an event, extended to the monitor's alerts. */
export function notificationText(type: EventType, name: string, hasInstance = true): string {
  switch (type) {
    case EVENT_TYPE.failure:
    case EVENT_TYPE.critical:
    case EVENT_TYPE.cancellation:
      return `Failed to execute '${name}'`;
    case EVENT_TYPE.finished:
      return `Finished executing '${name}'`;
    case EVENT_TYPE.launch:
      return `Launched '${name}'`;
    case EVENT_TYPE.backToNormal:
      return `'${name}' is back to normal`;
    case EVENT_TYPE.retrying:
      return `Retrying the current task in '${name}'`;
    case EVENT_TYPE.skipping:
      return `Skipping the current task in '${name}'`;
    case EVENT_TYPE.longElapsedTime:
      return `The running time of '${name}' is longer than expected.`;
    case EVENT_TYPE.notAssigned:
      return `Process of '${name}' is not assigned to any job-executor`;
    case EVENT_TYPE.processAbsence:
      return `Process of '${name}' is not running`;
    case EVENT_TYPE.workerLost:
      return hasInstance ? `The worker running '${name}' stopped heart-beating` : 'A worker stopped heart-beating';
    case EVENT_TYPE.missedSlot:
      return `A scheduled launch of '${name}' was missed`;
    case EVENT_TYPE.remindFailure:
      return `'${name}' is still in ERROR state`;
    case EVENT_TYPE.memoryExceeded:
      return `'${name}' uses far more memory than expected`;
  }
}

/** The mail subject: Kuroko2's mail subjects where it had them, the same style for the rest. */
export function mailSubject(type: EventType, name: string, hasInstance = true): string {
  let subject: string;
  switch (type) {
    case EVENT_TYPE.failure:
    case EVENT_TYPE.critical:
    case EVENT_TYPE.cancellation:
      subject = `[CRITICAL] Failed to execute '${name}' on kuroko`;
      break;
    case EVENT_TYPE.longElapsedTime:
      subject = `[WARN] The running time is longer than expected '${name}' on kuroko`;
      break;
    case EVENT_TYPE.remindFailure:
      subject = `[WARN] '${name}' is still in ERROR state`;
      break;
    case EVENT_TYPE.processAbsence:
      subject = `[CRITICAL] Process is not running on kuroko: '${name}'`;
      break;
    case EVENT_TYPE.notAssigned:
      subject = `[CRITICAL] Process is not assigned to any job-executor: '${name}'`;
      break;
    case EVENT_TYPE.workerLost:
      subject = hasInstance ? `[CRITICAL] Worker stopped heart-beating on kuroko: '${name}'` : '[CRITICAL] Worker stopped heart-beating on kuroko';
      break;
    case EVENT_TYPE.missedSlot:
      subject = `[WARN] A scheduled launch of '${name}' was missed on kuroko`;
      break;
    case EVENT_TYPE.memoryExceeded:
      subject = `[WARN] '${name}' uses far more memory than expected on kuroko`;
      break;
    default:
      subject = `[${levelOf(type)}] ${notificationText(type, name, hasInstance)}`;
  }
  return truncate(oneLine(subject), MAX_SUBJECT_LENGTH);
}

/** What a person should do about the event, for the mail body and the monitor's webhook messages. */
export function nextSteps(type: EventType): string | undefined {
  switch (type) {
    case EVENT_TYPE.failure:
      return 'Read the log, fix the cause, then retry or skip the failed token on the instance page (or cancel the instance).';
    case EVENT_TYPE.critical:
      return 'The instance was canceled by an error in its script or a definition it refers to: fix it and launch the job again.';
    case EVENT_TYPE.cancellation:
      return 'Nothing runs any more for this instance: launch the job again if the work is still needed.';
    case EVENT_TYPE.longElapsedTime:
      return 'Check whether the command is stuck; terminate it or cancel the instance if it is.';
    case EVENT_TYPE.notAssigned:
      return 'Check that a worker serves the queue and is not suspended, and check the worker host (agent running, disk, network). Cancel the instance if the work is no longer needed.';
    case EVENT_TYPE.processAbsence:
      return 'The command was finished as lost and its token failed. Check the host named in the log (was the agent restarted? is the process still running there?), then retry or skip the token.';
    case EVENT_TYPE.workerLost:
      return 'Check the worker host (agent process, machine state, network). Its commands were finished as lost: retry or skip their tokens once a healthy worker serves the queue.';
    case EVENT_TYPE.missedSlot:
      return 'A missed slot does not launch by itself: launch the job by hand if that run is still needed.';
    case EVENT_TYPE.remindFailure:
      return 'Retry or skip the failed token, or cancel the instance: an instance in error blocks launches (prevent_multi) and this reminder repeats daily.';
    case EVENT_TYPE.memoryExceeded:
      return "Check the command's memory use on its host before it runs out of memory; fix the job or give the queue bigger hosts.";
    default:
      return undefined;
  }
}

/** The notification as people read it, independent of the channel. */
export interface Notification {
  level: NotificationLevel;
  /** Kuroko2's text, without the level: "Failed to execute 'name'". */
  text: string;
  /** "[LEVEL] text", Kuroko2's Slack title. */
  title: string;
  /** Kuroko2's body: the log line that explains the event. */
  body: string;
  url: string;
  name: string;
}

/** Builds the channel-independent notification of an event. */
export function buildNotification(input: NotificationInput, links: LinkSettings): Notification {
  const name = jobName(input);
  const level = levelOf(input.event.type);
  const text = notificationText(input.event.type, name, input.event.instanceId !== null);
  return { level, text, title: `[${level}] ${text}`, body: input.event.message, url: eventUrl(links, input.event), name };
}

/** Kuroko2's Slack colours per level. */
export const SLACK_COLORS: Record<NotificationLevel, string> = {
  [NOTIFICATION_LEVEL.warning]: 'warning',
  [NOTIFICATION_LEVEL.failure]: 'danger',
  [NOTIFICATION_LEVEL.critical]: 'danger',
  [NOTIFICATION_LEVEL.success]: 'good',
  [NOTIFICATION_LEVEL.info]: '#439FE0',
};

export interface SlackPayload {
  channel: string;
  link_names: 1;
  attachments: [{ title: string; title_link: string; text: string; fallback: string; color: string }];
}

/** Kuroko2's Slack incoming-webhook payload for the definition's channel. */
export function buildSlackPayload(input: NotificationInput, links: LinkSettings): SlackPayload {
  const n = buildNotification(input, links);
  return {
    channel: input.definition?.slackChannel ?? '',
    link_names: 1,
    attachments: [{ title: n.title, title_link: n.url, text: n.body, fallback: `${n.title} ${n.url}`, color: SLACK_COLORS[n.level] }],
  };
}

export interface WebhookBody {
  action: string;
  level: NotificationLevel;
  subject: string;
  message: string;
  job_instance: {
    url: string;
    id: number;
    script: string;
    finished_at: string | null;
    canceled_at: string | null;
    error_at: string | null;
    created_at: string;
  } | null;
  job_definition: { url: string; id: number; name: string; description: string } | null;
}

/** Kuroko2's webhook body (`action: "notify_<event>"`), times in ISO-8601; monitor alerts add what to do next. */
export function buildWebhookBody(input: NotificationInput, links: LinkSettings): WebhookBody {
  const n = buildNotification(input, links);
  const { instance, definition, event } = input;
  const advice = MONITOR_ADVICE_IN_MESSAGE.has(event.type) ? nextSteps(event.type) : undefined;
  return {
    action: `notify_${event.type}`,
    level: n.level,
    subject: n.text,
    message: advice ? `${n.body}\n\n${advice}` : n.body,
    job_instance: instance
      ? {
          url: instanceUrl(links, instance.definitionId, instance.id),
          id: instance.id,
          script: instance.script,
          finished_at: iso(instance.finishedAt),
          canceled_at: iso(instance.canceledAt),
          error_at: iso(instance.errorAt),
          created_at: instance.createdAt.toISOString(),
        }
      : null,
    job_definition: definition
      ? { url: definitionUrl(links, definition.id), id: definition.id, name: definition.name, description: definition.description }
      : null,
  };
}

const MONITOR_ADVICE_IN_MESSAGE: ReadonlySet<EventType> = new Set([
  EVENT_TYPE.notAssigned,
  EVENT_TYPE.processAbsence,
  EVENT_TYPE.workerLost,
  EVENT_TYPE.missedSlot,
  EVENT_TYPE.remindFailure,
  EVENT_TYPE.memoryExceeded,
]);

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}

/** A mail-like message: one-line subject and a plain-text body. */
export interface MailMessage {
  subject: string;
  body: string;
}

/** The mail subject and body: what happened, to which job, where to look, what to do, and the last log lines. */
export function buildMailMessage(input: NotificationInput, links: LinkSettings): MailMessage {
  const n = buildNotification(input, links);
  const { event, definition, instance } = input;
  const lines: string[] = [n.title, ''];
  if (event.definitionId !== null) {
    lines.push(`Job: ${n.name} (#${event.definitionId}) ${definitionUrl(links, event.definitionId)}`);
  }
  if (event.instanceId !== null && event.definitionId !== null) {
    const status = instance ? ` (${instanceStatus(instance)})` : '';
    lines.push(`Instance: #${event.instanceId}${status} ${instanceUrl(links, event.definitionId, event.instanceId)}`);
  }
  lines.push(`Event: ${event.type} at ${event.createdAt.toISOString()}`);
  if (n.body) lines.push('', n.body);
  const advice = nextSteps(event.type);
  if (advice) lines.push('', `What to do next: ${advice}`);
  if (input.recentLogs.length > 0) {
    lines.push('', 'Last log lines:');
    for (const log of input.recentLogs) {
      lines.push(`${log.createdAt.toISOString()} [${log.level}] ${truncate(log.message, MAX_LOG_LINE_LENGTH)}`);
    }
  }
  if (definition === undefined && event.definitionId !== null) lines.push('', '(The job definition no longer exists.)');
  return {
    subject: mailSubject(event.type, n.name, event.instanceId !== null),
    body: truncate(lines.join('\n'), MAX_MAIL_BODY_LENGTH),
  };
}

/** One console line: level, text, link, and the first line of the body. */
export function formatConsoleLine(input: NotificationInput, links: LinkSettings): string {
  const n = buildNotification(input, links);
  const firstLine = n.body.split('\n', 1)[0] ?? '';
  return `[kuroko] ${n.title} ${n.url}${firstLine ? ` - ${firstLine}` : ''}`;
}

/** Keeps a string to `max` characters (code points), ending with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return chars.slice(0, max - 1).join('') + ELLIPSIS;
}

/** Replaces line breaks and control characters (SNS subjects allow neither) with spaces. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}
