/**
 * The notifier function: on the one-minute tick or a nudge (a step or an alert wrote events), notifier passes back to
 * back while they take work (app/passes.ts), over the alert topic, each definition's webhook and Slack when
 * configured; then the outbox backlog as an Embedded Metric Format line, which the OutboxBacklog alarm watches.
 *
 * Each pass holds its claims only until the invocation's safety margin (NOTIFIER_SAFETY_MARGIN_MS): the notifier
 * service starts no send with less than its send timeout of claim left, so no send outlives the invocation, and a
 * claim left unsent comes back to the next notifier soon after this one has ended instead of two minutes later.
 */
import type { Context } from 'aws-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { readSecretString } from '../../adapters/aws/secrets';
import { readParameter } from '../../adapters/aws/ssm-parameters';
import { createSnsChannel } from '../../adapters/aws/sns-channel';
import { createHttpChannels } from '../../adapters/channels/notification-channels';
import { describeError } from '../../core/errors';
import type { NotificationChannel } from '../../core/notify/notification-channel';
import { channelScanStart, DEFAULT_NOTIFIER_SETTINGS, type NotifierSettings } from '../../core/services/notifier-service';
import type { EventDeliveryRepository } from '../../db/repositories/event-delivery-repository';
import type { NotifierConfig } from '../config/config';
import { OUTBOX_METRIC } from '../config/env-keys';
import { withChannelSecrets } from '../config/notification-settings';
import { lazyRetrying } from '../lazy-retrying';
import { notifierPass } from '../passes';
import type { TickKind } from './lambda-events';
import { METRIC_UNIT, writeEmbeddedMetrics } from './lambda-metrics';
import type { LambdaRuntime } from './lambda-runtime';
import { runPassTick } from './lambda-tick';

/**
 * The backlog over the range the notifier pass scans (channelScanStart). Older events are never picked up, so
 * counting them would keep the alarm on forever.
 */
export async function outboxBacklog(
  deliveries: EventDeliveryRepository,
  names: readonly string[],
  now: Date,
  settings: Pick<NotifierSettings, 'maxEventAgeMs' | 'channelBackfillMs'> = DEFAULT_NOTIFIER_SETTINGS,
): Promise<number> {
  // Without channels both read nothing and the backlog is 0.
  const { since } = await channelScanStart(deliveries, names, now, settings);
  return deliveries.countBacklog(names, since);
}

/** One invocation's work. */
export function notifierFunction(runtime: LambdaRuntime<NotifierConfig>) {
  const { config, logger } = runtime;

  /**
   * The channels, built on the first invocation: the Slack URL is read from the operator's Secrets Manager secret
   * and the webhook key from its SecureString parameter (the migrator generates it) when named, else taken from
   * KUROKO_SLACK_WEBHOOK_URL and KUROKO_WEBHOOK_SECRET. Links point at the HTTP API, which serves the console.
   */
  async function buildChannels(): Promise<NotificationChannel[]> {
    const slackArn = config.slackWebhookUrlSecretArn;
    const keyName = config.webhookSecretParameter;
    const [slackWebhookUrl, webhookSecret] = await Promise.all([
      slackArn === undefined ? undefined : readSecretString(new SecretsManagerClient({}), slackArn),
      keyName === undefined ? undefined : readParameter(new SSMClient({}), keyName),
    ]);
    const notification = withChannelSecrets(config.notification, { slackWebhookUrl, webhookSecret });
    return [
      createSnsChannel({ client: new SNSClient({}), topicArn: config.alertTopicArn, links: notification.links }),
      ...createHttpChannels(notification),
    ];
  }
  // A failed secret read fails this invocation (the runtime logs it) and the next one tries again.
  const channels = lazyRetrying(buildChannels);
  const onError = (error: unknown, at: { eventId: number; channel: string; attempt: number }) =>
    logger.warn('a notification failed; it will be retried', { ...at, error: describeError(error) });

  return async (trigger: TickKind, context: Context) => {
    const ready = await channels();
    const { services } = runtime;
    const pass = notifierPass(services, { channels: () => ready, onError });
    const total = await runPassTick(pass, {}, () => context.getRemainingTimeInMillis());
    const backlog = await outboxBacklog(services.stores.deliveries, ready.map((c) => c.name), services.clock.now());
    writeEmbeddedMetrics({
      namespace: config.metricsNamespace,
      dimensions: { Stage: config.stage },
      metrics: [{ name: OUTBOX_METRIC.name, value: backlog, unit: METRIC_UNIT.count }],
      timestamp: services.clock.now().getTime(),
    });
    const result = { ...total, backlog };
    logger.info('notifier done', { trigger, ...result });
    return result;
  };
}
