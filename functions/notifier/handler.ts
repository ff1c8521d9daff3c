/**
 * The notifier: on the one-minute tick or a nudge (a step or an alert wrote events), notifier passes back to back
 * while they take work, over the alert topic, each definition's webhook and Slack when configured; then the
 * outbox backlog as an Embedded Metric Format line, which the OutboxBacklog alarm watches.
 *
 * Each pass holds its claims only until the invocation's safety margin: the notifier service starts no send with
 * less than its send timeout of claim left, so no send outlives the invocation, and a claim left unsent comes back
 * to the next notifier soon after this one has ended instead of two minutes later.
 */
import type { Context } from 'aws-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { readSecretString } from '../../adapters/aws/secrets';
import { createSnsChannel } from '../../adapters/aws/sns-channel';
import type { NotificationChannel } from '../../core/notify/notification-channel';
import {
  channelScanStart,
  DEFAULT_NOTIFIER_SETTINGS,
  runNotifierPass,
  type NotifierPassResult,
  type NotifierSettings,
} from '../../core/services/notifier-service';
import { EventDeliveryRepository } from '../../db/repositories/event-delivery-repository';
import { parseNotifierConfig } from '../../app/config/config';
import { OUTBOX_METRIC } from '../../app/config/env-keys';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { METRIC_UNIT, writeEmbeddedMetrics } from '../../app/lambda/lambda-metrics';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { lazyRetrying } from '../../app/lazy-retrying';
import { skipWhileAsleep, type Asleep } from '../../app/lambda/lambda-sleep';
import { createHttpChannels } from '../../adapters/channels/notification-channels';
import { NOTIFICATION_ENV_KEYS, readNotificationSettings } from '../../app/config/notification-settings';
import { describeError } from '../../core/errors';

/** Left after the last claim ends: the writes of the last outcomes, the backlog count and the return. */
export const NOTIFIER_SAFETY_MARGIN_MS = 5_000;

export const runtime = createLambdaRuntime(parseNotifierConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
const { config, logger } = runtime;

/**
 * The channels, built on the first invocation: the Slack URL and the webhook key are read from their Secrets
 * Manager secrets (the CDK app generates the webhook key; the operator names the Slack secret), else taken from
 * KUROKO_SLACK_WEBHOOK_URL and KUROKO_WEBHOOK_SECRET. The base URL is the HTTP API's, which serves the console.
 */
async function buildChannels(): Promise<NotificationChannel[]> {
  const secrets = new SecretsManagerClient({});
  const read = (arn: string | undefined) => (arn === undefined ? Promise.resolve(undefined) : readSecretString(secrets, arn));
  const [slackWebhookUrl, webhookSecret] = await Promise.all([read(config.slackWebhookUrlSecretArn), read(config.webhookSecretArn)]);
  const notification = readNotificationSettings({
    ...process.env,
    ...(slackWebhookUrl !== undefined ? { [NOTIFICATION_ENV_KEYS.slackWebhookUrl]: slackWebhookUrl } : {}),
    ...(webhookSecret !== undefined ? { [NOTIFICATION_ENV_KEYS.webhookSecret]: webhookSecret } : {}),
  });
  return [
    createSnsChannel({ client: new SNSClient({}), topicArn: config.alertTopicArn, links: notification.links }),
    ...createHttpChannels(notification),
  ];
}

// A failed secret read fails this invocation (the runtime logs it) and the next one tries again.
const ready = lazyRetrying(buildChannels);
let store: EventDeliveryRepository | undefined;

export const NOTIFIER_STOP = { idle: 'idle', time: 'time' } as const;
export type NotifierStop = (typeof NOTIFIER_STOP)[keyof typeof NOTIFIER_STOP];

export interface NotifierInvocationResult extends NotifierPassResult {
  passes: number;
  stoppedBy: NotifierStop;
  /** Events not yet settled on every channel after the passes (the metric's value). */
  backlog: number;
}

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

export const handler = lambdaHandler(runtime, (event: unknown, context: Context) =>
  tickUnlessResuming(runtime.log, 'notifier', () => tick(event, context)),
);

async function tick(event: unknown, context: Context): Promise<NotifierInvocationResult | Asleep> {
  const trigger = parseTickEvent(event);
  // Asleep, nothing was pending when the sleep began: no backlog metric either (its alarm keeps its state).
  const asleep = await skipWhileAsleep(runtime.sleep, trigger);
  if (asleep) return asleep;
  const channels = await ready();
  const { services } = runtime;
  store ??= new EventDeliveryRepository(runtime.handle.db);
  const total: NotifierInvocationResult = {
    passes: 0,
    claimed: 0,
    delivered: 0,
    retried: 0,
    failed: 0,
    skipped: 0,
    deferred: 0,
    stoppedBy: NOTIFIER_STOP.idle,
    backlog: 0,
  };
  for (;;) {
    const claimTimeoutMs = Math.min(
      DEFAULT_NOTIFIER_SETTINGS.claimTimeoutMs,
      context.getRemainingTimeInMillis() - NOTIFIER_SAFETY_MARGIN_MS,
    );
    // A claim shorter than one send could send nothing: leave the rest to the next invocation.
    if (claimTimeoutMs <= DEFAULT_NOTIFIER_SETTINGS.sendTimeoutMs) {
      total.stoppedBy = NOTIFIER_STOP.time;
      break;
    }
    const result = await runNotifierPass({
      store,
      channels,
      clock: services.clock,
      ids: services.ids,
      settings: { claimTimeoutMs },
      onError: (error, at) =>
        logger.warn('a notification failed; it will be retried', {
          ...at,
          error: describeError(error),
        }),
    });
    total.passes++;
    total.claimed += result.claimed;
    total.delivered += result.delivered;
    total.retried += result.retried;
    total.failed += result.failed;
    total.skipped += result.skipped;
    total.deferred += result.deferred;
    // A batch of only skipped pairs claims nothing yet may have more events behind it.
    if (result.claimed === 0 && result.skipped === 0) break;
  }

  total.backlog = await outboxBacklog(store, channels.map((c) => c.name), services.clock.now());
  writeEmbeddedMetrics({
    namespace: config.metricsNamespace,
    dimensions: { Stage: config.stage },
    metrics: [{ name: OUTBOX_METRIC.name, value: total.backlog, unit: METRIC_UNIT.count }],
    timestamp: services.clock.now().getTime(),
  });
  logger.info('notifier done', { trigger, ...total });
  return total;
}
