/**
 * The doorbell on AWS (core/doorbell.ts, issue 18): an SQS standard queue that carries no state. The processor
 * Lambda rings it when a pass queued commands; each agent on EC2 long-polls it (ReceiveMessage with
 * WaitTimeSeconds 20, the longest SQS allows) and claims from the database when a message arrives, so an idle
 * agent makes three SQS requests a minute instead of sixty Data API calls. The database stays the only state: the
 * message says nothing but "look now", and a lost, doubled or late one costs at most the agent's fallback poll.
 *
 * SQS hands each message to one receiver, so a ring sends one message per command queued (up to ten in one
 * SendMessageBatch) and a listener takes one message per receive: several queued commands wake several agents.
 * A message names the commands it was sent for (their execution ids, spread over the messages, at most
 * MAX_RING_HINTS in all) so the agent that takes it can claim them by id, one Data API call instead of two; the
 * ids are hints the claim checks, and a body without them (RING_BODY) is a plain ring.
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
import type { Doorbell, DoorbellRing } from '../../core/doorbell';

/** The longest long poll SQS allows, in seconds. */
export const SQS_MAX_WAIT_SECONDS = 20;
/** The shortest long poll the SQS guide recommends, in seconds. */
export const SQS_MIN_WAIT_SECONDS = 1;
/** Entries per SendMessageBatch, and messages per ReceiveMessage, at most. */
export const SQS_MAX_BATCH = 10;
/** The body of a ring that names no command. */
export const RING_BODY = 'ring';
/** Execution ids one ring names at most (the rest are found by the ordinary claim). */
export const MAX_RING_HINTS = 100;

/** The body of a message naming these executions. */
export const ringBody = (hints: readonly number[]): string => (hints.length === 0 ? RING_BODY : JSON.stringify({ hints }));

/** The execution ids a message's body names: none for a plain ring or anything malformed. */
export function hintsInBody(body: string | undefined): number[] {
  if (body === undefined || body === RING_BODY) return [];
  try {
    const parsed: unknown = JSON.parse(body);
    const hints = typeof parsed === 'object' && parsed !== null ? (parsed as { hints?: unknown }).hints : undefined;
    if (!Array.isArray(hints)) return [];
    return hints.filter((id): id is number => Number.isSafeInteger(id) && (id as number) > 0).slice(0, MAX_RING_HINTS);
  } catch {
    return [];
  }
}

export interface SqsDoorbellOptions {
  client: SQSClient;
  queueUrl: string;
}

/** A doorbell over one SQS queue. */
export class SqsDoorbell implements Doorbell {
  constructor(private readonly options: SqsDoorbellOptions) {}

  /**
   * Sends `count` messages (1 to 10: one per command queued, so as many agents can wake), the hints dealt out among
   * them in turn: with up to ten commands queued, each message names one.
   */
  async ring(count = 1, hints: readonly number[] = []): Promise<void> {
    const named = [...new Set(hints)].slice(0, MAX_RING_HINTS);
    const n = Math.max(1, Math.min(SQS_MAX_BATCH, Math.floor(Math.max(count, named.length))));
    const entries = Array.from({ length: n }, (_, i) => ({ Id: String(i), MessageBody: ringBody(named.filter((_, j) => j % n === i)) }));
    await this.options.client.send(new SendMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: entries }));
  }

  /** Resolves the ring with the ids its message names, true for a plain ring, false for none. */
  async listen(maxWaitMs: number, signal: AbortSignal): Promise<boolean | DoorbellRing> {
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
    if (messages.length === 0) return false;
    const named = [...new Set(messages.flatMap((message) => hintsInBody(message.Body)))];
    return named.length > 0 ? { hints: named } : true;
  }
}
