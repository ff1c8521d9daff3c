/**
 * The alert topic as a notification channel: the mail-like channel of the gating rules. Each event is one
 * Publish with a one-line subject (email subscriptions use it), a plain-text body, and message attributes
 * `event`, `level`, `job_definition_id` (and `job_instance_id`) so subscriptions can filter.
 */
import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';
import type { Delivery, NotificationChannel } from '../../core/notify/notification-channel';
import { buildMailMessage, type LinkSettings } from '../../core/notify/notification-message';
import { CHANNEL_KIND, levelOf } from '../../core/notify/notification-rules';

export interface SnsChannelOptions {
  /** Injected so tests and each composition root choose region, credentials and retries. */
  client: SNSClient;
  topicArn: string;
  links: LinkSettings;
  /** Delivery rows are keyed by it; `sns` unless several topics are configured. */
  name?: string;
  /** Bounds one Publish; keep it below the notifier's send timeout. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The PublishCommand input for one delivery. */
export function snsPublishInput(delivery: Delivery, topicArn: string, links: LinkSettings) {
  const { event } = delivery.input;
  const mail = buildMailMessage(delivery.input, links);
  const attributes: Record<string, MessageAttributeValue> = {
    event: { DataType: 'String', StringValue: event.type },
    level: { DataType: 'String', StringValue: levelOf(event.type) },
  };
  if (event.definitionId !== null) attributes.job_definition_id = { DataType: 'Number', StringValue: String(event.definitionId) };
  if (event.instanceId !== null) attributes.job_instance_id = { DataType: 'Number', StringValue: String(event.instanceId) };
  return { TopicArn: topicArn, Subject: mail.subject, Message: mail.body, MessageAttributes: attributes };
}

/** Creates the SNS channel. */
export function createSnsChannel(options: SnsChannelOptions): NotificationChannel {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    name: options.name ?? CHANNEL_KIND.sns,
    kind: CHANNEL_KIND.sns,
    async send(delivery) {
      await options.client.send(new PublishCommand(snsPublishInput(delivery, options.topicArn, options.links)), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
    },
  };
}
