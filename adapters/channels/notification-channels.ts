/**
 * The HTTP and console notification channels (Slack incoming webhook, each definition's webhook, the local
 * mode's console log). Their settings are read in app/config/notification-settings.ts. The SNS channel lives in adapters/aws/sns-channel.ts.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Delivery, NotificationChannel } from '../../core/notify/notification-channel';
import {
  buildSlackPayload,
  buildWebhookBody,
  formatConsoleLine,
  type LinkSettings,
} from '../../core/notify/notification-message';
import { CHANNEL_KIND } from '../../core/notify/notification-rules';
import { assertWebhookTarget, type HostResolver } from './webhook-address-guard';

/** Kuroko2's webhook User-Agent, kept so receivers written for it keep working. */
export const WEBHOOK_USER_AGENT = 'Kuroko2-Webhook';
export const SIGNATURE_HEADER = 'X-Kuroko2-Signature';
export const DELIVERY_ID_HEADER = 'X-Kuroko2-Id';
const DEFAULT_TIMEOUT_MS = 10_000;

export interface NotificationSettings {
  links: LinkSettings;
  /** The global Slack incoming-webhook URL; without it there is no Slack channel. */
  slackWebhookUrl: string | undefined;
  /** HMAC key of the webhook signature; without it no signature header is sent. */
  webhookSecret: string | undefined;
  /** Let webhooks reach link-local and metadata addresses (webhook-address-guard.ts); off unless configured. */
  webhookAllowLinkLocal?: boolean;
}

/** `sha256=<hex HMAC-SHA256 of the body>`, Kuroko2's signature header value. */
export function signWebhookBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * A UUID (version 5 layout) derived from the delivery key: the same for every attempt of one (event, channel)
 * pair and different for every other pair. Kuroko2 sent a random UUID per request, which made its retries
 * impossible to tell from new notifications.
 */
export function deliveryUuid(deliveryKey: string): string {
  const hash = createHash('sha1').update(`kuroko-delivery:${deliveryKey}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The fetch these channels use; injectable for tests that want to fail the network itself. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

interface HttpChannelOptions {
  links: LinkSettings;
  timeoutMs?: number;
  fetch?: FetchFunction;
}

/**
 * POSTs a JSON body and throws on a network error, a timeout or a non-2xx answer. Redirects are not followed (a 302
 * would turn the POST into a GET to wherever the receiver points, past the address check), and the error names the
 * status only: the receiver's body never reaches `last_error`, where everyone who can read the event would see it.
 */
async function postJson(
  fetchFn: FetchFunction,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<void> {
  const response = await fetchFn(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body?.cancel().catch(() => undefined);
  if (response.status >= HTTP_REDIRECT_MIN && response.status < HTTP_REDIRECT_MAX) {
    throw new Error(`POST ${redactUrl(url)} answered ${response.status}, a redirect, which is not followed`);
  }
  if (!response.ok) throw new Error(`POST ${redactUrl(url)} answered ${response.status}`);
}

const HTTP_REDIRECT_MIN = 300;
const HTTP_REDIRECT_MAX = 400;

/** Slack and webhook URLs carry secrets in their path: errors show the origin only. */
function redactUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(invalid URL)';
  }
}

/** Slack through one global incoming webhook, to each definition's `slack_channel` (Kuroko2's attachment). */
export function createSlackChannel(options: HttpChannelOptions & { webhookUrl: string }): NotificationChannel {
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    name: CHANNEL_KIND.slack,
    kind: CHANNEL_KIND.slack,
    async send(delivery: Delivery) {
      const body = JSON.stringify(buildSlackPayload(delivery.input, options.links));
      await postJson(fetchFn, options.webhookUrl, body, {}, timeoutMs);
    },
  };
}

/** The definition's webhook: Kuroko2's JSON body and headers, with a delivery id stable across retries. */
export function createWebhookChannel(
  options: HttpChannelOptions & { secret?: string | undefined; allowLinkLocal?: boolean | undefined; resolve?: HostResolver },
): NotificationChannel {
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    name: CHANNEL_KIND.webhook,
    kind: CHANNEL_KIND.webhook,
    async send(delivery: Delivery) {
      const url = delivery.input.definition?.webhookUrl;
      if (!url) throw new Error(`definition of event ${delivery.input.event.id} has no webhook URL any more`);
      const body = JSON.stringify(buildWebhookBody(delivery.input, options.links));
      const headers: Record<string, string> = {
        [DELIVERY_ID_HEADER]: deliveryUuid(delivery.deliveryKey),
        'User-Agent': WEBHOOK_USER_AGENT,
      };
      if (options.secret) headers[SIGNATURE_HEADER] = signWebhookBody(body, options.secret);
      if (!options.allowLinkLocal) await assertWebhookTarget(url, options.resolve);
      await postJson(fetchFn, url, body, headers, timeoutMs);
    },
  };
}

/** The local mode's console: one line per event on the given writer (stderr by default). */
export function createConsoleChannel(options: { links: LinkSettings; write?: (line: string) => void }): NotificationChannel {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return {
    name: CHANNEL_KIND.console,
    kind: CHANNEL_KIND.console,
    async send(delivery: Delivery) {
      write(formatConsoleLine(delivery.input, options.links));
    },
  };
}

/** The HTTP channels a deployment has: the definition webhook always, Slack when its URL is configured. */
export function createHttpChannels(settings: NotificationSettings, options: { fetch?: FetchFunction; timeoutMs?: number } = {}): NotificationChannel[] {
  const common = { links: settings.links, ...options };
  const channels = [createWebhookChannel({ ...common, secret: settings.webhookSecret, allowLinkLocal: settings.webhookAllowLinkLocal })];
  if (settings.slackWebhookUrl) channels.push(createSlackChannel({ ...common, webhookUrl: settings.slackWebhookUrl }));
  return channels;
}
