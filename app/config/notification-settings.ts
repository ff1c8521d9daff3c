/**
 * The notification channels' settings as a configuration fragment: the notifier Lambda's schema (config.ts) and the
 * local mode's (local-config.ts) include it. On AWS the Slack URL and the webhook key may come from secrets instead,
 * read on the first invocation and checked by the same rules (`withChannelSecrets`).
 */
import { trimBaseUrl } from '../../core/urls';
import { z } from 'zod';
import type { NotificationSettings } from '../../adapters/channels/notification-channels';
import { parseWith, type Environment } from './config-schemas';
import { ENV_KEYS } from './env-keys';
import { blankAsUnset } from './monitor-settings';

/** Environment variables of the notification channels. */
export const NOTIFICATION_ENV_KEYS = {
  baseUrl: ENV_KEYS.baseUrl,
  slackWebhookUrl: ENV_KEYS.slackWebhookUrl,
  webhookSecret: ENV_KEYS.webhookSecret,
  webhookAllowLinkLocal: ENV_KEYS.webhookAllowLinkLocal,
} as const;

const DEFAULT_BASE_URL = 'http://localhost:3000';

const trimmed = (value: unknown) => (typeof value === 'string' ? blankAsUnset(value.trim()) : value);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const webhookSecret = z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional());

export const notificationShape = {
  [NOTIFICATION_ENV_KEYS.baseUrl]: z.preprocess(trimmed, httpUrl.optional()),
  [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: z.preprocess(trimmed, httpUrl.optional()),
  [NOTIFICATION_ENV_KEYS.webhookSecret]: webhookSecret,
  [NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal]: z.preprocess(trimmed, z.enum(['true', 'false']).optional()),
};
type NotificationEnv = z.infer<z.ZodObject<typeof notificationShape>>;

/** The channels' settings; links point at the base URL (the HTTP API's, which serves the console). */
export function toNotificationSettings(env: NotificationEnv): NotificationSettings {
  return {
    links: { baseUrl: trimBaseUrl(env[NOTIFICATION_ENV_KEYS.baseUrl] ?? DEFAULT_BASE_URL) },
    slackWebhookUrl: env[NOTIFICATION_ENV_KEYS.slackWebhookUrl],
    webhookSecret: env[NOTIFICATION_ENV_KEYS.webhookSecret],
    ...(env[NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal] === 'true' ? { webhookAllowLinkLocal: true } : {}),
  };
}

const notificationSchema = z.object(notificationShape).transform(toNotificationSettings);

/** Reads the channels' settings alone; blank values count as unset; throws a ConfigError listing every problem. */
export const readNotificationSettings = (env: Environment): NotificationSettings => parseWith(notificationSchema, env, 'notification');

/** The settings with the values read from secrets in place of the variables', checked by the same rules. */
export function withChannelSecrets(
  settings: NotificationSettings,
  secrets: { slackWebhookUrl?: string | undefined; webhookSecret?: string | undefined },
): NotificationSettings {
  const checked = parseWith(
    z.object({ [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: notificationShape[NOTIFICATION_ENV_KEYS.slackWebhookUrl], [NOTIFICATION_ENV_KEYS.webhookSecret]: webhookSecret }),
    { [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: secrets.slackWebhookUrl, [NOTIFICATION_ENV_KEYS.webhookSecret]: secrets.webhookSecret },
    'notification secrets',
  );
  return {
    ...settings,
    ...(secrets.slackWebhookUrl !== undefined ? { slackWebhookUrl: checked[NOTIFICATION_ENV_KEYS.slackWebhookUrl] } : {}),
    ...(secrets.webhookSecret !== undefined ? { webhookSecret: checked[NOTIFICATION_ENV_KEYS.webhookSecret] } : {}),
  };
}
