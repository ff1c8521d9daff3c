/**
 * The doorbell on AWS (core/doorbell.ts, issue 18): an SQS standard queue that carries no state. The processor
 * Lambda rings it when a pass queued commands; each agent on EC2 long-polls it (ReceiveMessage with
 * WaitTimeSeconds 20, the longest SQS allows) and claims from the database when a message arrives, so an idle
 * agent makes three SQS requests a minute instead of sixty Data API calls. The database stays the only state: the
 * message says nothing but "look now", and a lost, doubled or late one costs at most the agent's fallback poll.
 *
 * SQS hands each message to one receiver, so a ring sends one message per command queued (up to ten in one
 * SendMessageBatch) and a listener takes one message per receive: several queued commands wake several agents.
 * Received messages are deleted at once, beside the wake-up rather than before it; one whose delete fails comes back
 * after the visibility timeout, a harmless extra wake-up, and the queue's one-minute retention drops rings nobody heard.
 *
 * Long polling limits (Amazon SQS Developer Guide, "Setting-up long polling in Amazon SQS",
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-setting-up-long-polling.html):
 * the longest wait is 20 seconds, a shorter one should be at least 1 second, and the HTTP response timeout of
 * ReceiveMessage must be longer than WaitTimeSeconds (the SDK's default handler sets none). MaxNumberOfMessages and
 * SendMessageBatch entries are 1 to 10 (ReceiveMessage and SendMessageBatch in the SQS API Reference).
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Doorbell } from '../../core/doorbell';

/** The longest long poll SQS allows, in seconds. */
export const SQS_MAX_WAIT_SECONDS = 20;
/** The shortest long poll the SQS guide recommends, in seconds. */
export const SQS_MIN_WAIT_SECONDS = 1;
/** Entries per SendMessageBatch, and messages per ReceiveMessage, at most. */
export const SQS_MAX_BATCH = 10;
/** The body of a ring: nothing a listener reads. */
export const RING_BODY = 'ring';

export interface SqsDoorbellOptions {
  client: SQSClient;
  queueUrl: string;
}

/** A doorbell over one SQS queue. */
export class SqsDoorbell implements Doorbell {
  constructor(private readonly options: SqsDoorbellOptions) {}

  /** Sends `count` messages (1 to 10: one per command queued, so as many agents can wake). */
  async ring(count = 1): Promise<void> {
    const n = Math.max(1, Math.min(SQS_MAX_BATCH, Math.floor(count)));
    const entries = Array.from({ length: n }, (_, i) => ({ Id: String(i), MessageBody: RING_BODY }));
    await this.options.client.send(new SendMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: entries }));
  }

  async listen(maxWaitMs: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    const waitSeconds = Math.max(SQS_MIN_WAIT_SECONDS, Math.min(SQS_MAX_WAIT_SECONDS, Math.ceil(maxWaitMs / 1000)));
    let messages;
    try {
      const answer = await this.options.client.send(
        new ReceiveMessageCommand({ QueueUrl: this.options.queueUrl, WaitTimeSeconds: waitSeconds, MaxNumberOfMessages: 1 }),
        { abortSignal: signal },
      );
      messages = answer.Messages ?? [];
    } catch (error) {
      if (signal.aborted) return false;
      throw error;
    }
    const handles = messages.flatMap((message) => (message.ReceiptHandle ? [message.ReceiptHandle] : []));
    if (handles.length > 0) {
      // Not awaited: the ring is reported at once, the delete's round trip runs while the agent claims. A failed
      // (or late) delete only brings the ring back after the visibility timeout: never worth failing the wake-up.
      void this.options.client
        .send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.options.queueUrl,
            Entries: handles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })),
          }),
        )
        .catch(() => undefined);
    }
    return messages.length > 0;
  }
}
