/** The notification channels' settings, read from the environment once at start. */
import { z } from 'zod';
import { ConfigError } from '../../core/errors';
import type { NotificationSettings } from '../../adapters/channels/notification-channels';
import { ENV_KEYS } from './env-keys';

/** Environment variables of the notification channels. */
export const NOTIFICATION_ENV_KEYS = {
  baseUrl: ENV_KEYS.baseUrl,
  slackWebhookUrl: ENV_KEYS.slackWebhookUrl,
  webhookSecret: ENV_KEYS.webhookSecret,
  webhookAllowLinkLocal: ENV_KEYS.webhookAllowLinkLocal,
} as const;

const DEFAULT_BASE_URL = 'http://localhost:3000';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const settingsSchema = z.object({
  [NOTIFICATION_ENV_KEYS.baseUrl]: httpUrl.optional(),
  [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: httpUrl.optional(),
  [NOTIFICATION_ENV_KEYS.webhookSecret]: z.string().min(1).optional(),
  [NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal]: z.enum(['true', 'false']).optional(),
});

/** Reads the channels' settings from an environment; blank values count as unset. */
export function readNotificationSettings(env: Readonly<Record<string, string | undefined>>): NotificationSettings {
  const pick = (key: string) => (env[key]?.trim() ? env[key]?.trim() : undefined);
  const parsed = settingsSchema.safeParse({
    [NOTIFICATION_ENV_KEYS.baseUrl]: pick(NOTIFICATION_ENV_KEYS.baseUrl),
    [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: pick(NOTIFICATION_ENV_KEYS.slackWebhookUrl),
    [NOTIFICATION_ENV_KEYS.webhookSecret]: env[NOTIFICATION_ENV_KEYS.webhookSecret] || undefined,
    [NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal]: pick(NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal),
  });
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const data = parsed.data;
  return {
    links: { baseUrl: (data[NOTIFICATION_ENV_KEYS.baseUrl] ?? DEFAULT_BASE_URL).replace(/\/+$/, '') },
    slackWebhookUrl: data[NOTIFICATION_ENV_KEYS.slackWebhookUrl],
    webhookSecret: data[NOTIFICATION_ENV_KEYS.webhookSecret],
    ...(data[NOTIFICATION_ENV_KEYS.webhookAllowLinkLocal] === 'true' ? { webhookAllowLinkLocal: true } : {}),
  };
}
