/**
 * The SQS doorbell at the SDK boundary. The limits it keeps are the SQS Developer Guide's ("Setting-up long polling
 * in Amazon SQS": the longest long poll is 20 seconds, a shorter one at least 1 second) and the API Reference's
 * (ReceiveMessage MaxNumberOfMessages and SendMessageBatch entries: 1 to 10).
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { hintsInBody, MAX_RING_HINTS, RING_BODY, SqsDoorbell } from '../../adapters/aws/sqs-doorbell';

const sqs = mockClient(SQSClient);
const client = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/kuroko-doorbell';
const bell = () => new SqsDoorbell({ client, queueUrl });
const open = () => new AbortController().signal;

beforeEach(() => sqs.reset());

describe('SQS doorbell', () => {
  it('rings with one message per queued command, 1 to 10 in one batch', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    await bell().ring();
    await bell().ring(3);
    await bell().ring(250);
    await bell().ring(0);
    const batches = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input);
    expect(batches.map((input) => input.Entries!.length)).toEqual([1, 3, 10, 1]);
    expect(batches.every((input) => input.QueueUrl === queueUrl)).toBe(true);
    expect(new Set(batches[2]!.Entries!.map((entry) => entry.Id)).size).toBe(10);
    expect(batches[1]!.Entries!.every((entry) => entry.MessageBody === RING_BODY)).toBe(true);
  });

  it('names the queued commands in the messages, dealt out among them: a hint each with up to ten (issue 18)', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    await bell().ring(2, [11, 12]);
    await bell().ring(12, Array.from({ length: 12 }, (_, i) => 101 + i));
    await bell().ring(1, Array.from({ length: 300 }, (_, i) => 1_001 + i));
    const bodies = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries!.map((entry) => hintsInBody(entry.MessageBody)));
    expect(bodies[0]).toEqual([[11], [12]]);
    expect(bodies[1]).toHaveLength(10);
    expect(bodies[1]![0]).toEqual([101, 111]);
    expect(bodies[1]!.flat().sort()).toEqual(Array.from({ length: 12 }, (_, i) => 101 + i).sort());
    expect(bodies[2]).toHaveLength(10);
    expect(bodies[2]!.flat()).toHaveLength(MAX_RING_HINTS);
  });

  it('hands a listener the ids its message names; a plain or malformed body is a plain ring (issue 18)', async () => {
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [{ Id: '0' }], Failed: [] });
    const heard = async (Body: string) => {
      sqs.on(ReceiveMessageCommand).resolves({ Messages: [{ MessageId: 'm1', ReceiptHandle: 'handle-1', Body }] });
      return bell().listen(20_000, open());
    };
    expect(await heard(JSON.stringify({ hints: [7, 8] }))).toEqual({ hints: [7, 8] });
    expect(await heard(JSON.stringify({ hints: [7, 'x', -1, 1.5] }))).toEqual({ hints: [7] });
    for (const body of [RING_BODY, '{"hints":', '{"hints":7}', '[1]', 'null']) expect(await heard(body)).toBe(true);
  });

  it('long-polls within SQS limits: at most 20 s, at least 1 s, one message per receive', async () => {
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [] });
    for (const ms of [20_000, 60_000, 100, 0, 5_500]) await bell().listen(ms, open());
    const receives = sqs.commandCalls(ReceiveMessageCommand).map((call) => call.args[0].input);
    expect(receives.map((input) => input.WaitTimeSeconds)).toEqual([20, 20, 1, 1, 6]);
    expect(receives.every((input) => input.MaxNumberOfMessages === 1 && input.QueueUrl === queueUrl)).toBe(true);
  });

  it('reports a ring and deletes the message it received', async () => {
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [{ MessageId: 'm1', ReceiptHandle: 'handle-1', Body: RING_BODY }] });
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [{ Id: '0' }], Failed: [] });
    expect(await bell().listen(20_000, open())).toBe(true);
    const deletes = sqs.commandCalls(DeleteMessageBatchCommand).map((call) => call.args[0].input);
    expect(deletes).toEqual([{ QueueUrl: queueUrl, Entries: [{ Id: '0', ReceiptHandle: 'handle-1' }] }]);
  });

  it('reports the ring without waiting for the delete (the agent claims meanwhile)', async () => {
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [{ MessageId: 'm1', ReceiptHandle: 'handle-1', Body: RING_BODY }] });
    let release!: () => void;
    sqs.on(DeleteMessageBatchCommand).callsFake(() => new Promise((resolve) => (release = () => resolve({ Successful: [{ Id: '0' }], Failed: [] }))));
    const heard = await Promise.race([bell().listen(20_000, open()), new Promise((resolve) => setTimeout(() => resolve('waited for the delete'), 1_000))]);
    expect(heard).toBe(true);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(1);
    release();
  });

  it('reports no ring after an empty long poll, and deletes nothing', async () => {
    sqs.on(ReceiveMessageCommand).resolves({});
    expect(await bell().listen(20_000, open())).toBe(false);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(0);
  });

  it('still reports the ring when the delete fails (the message only comes back later)', async () => {
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [{ MessageId: 'm1', ReceiptHandle: 'handle-1', Body: RING_BODY }] });
    sqs.on(DeleteMessageBatchCommand).rejects(new Error('throttled'));
    expect(await bell().listen(20_000, open())).toBe(true);
  });

  it('ends quietly when its wait is aborted, and fails loudly when SQS cannot be reached', async () => {
    const stopping = new AbortController();
    sqs.on(ReceiveMessageCommand).callsFake(() => {
      stopping.abort();
      return Promise.reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    });
    expect(await bell().listen(20_000, stopping.signal)).toBe(false);
    expect(await bell().listen(20_000, stopping.signal)).toBe(false);
    sqs.on(ReceiveMessageCommand).rejects(new Error('AccessDenied'));
    await expect(bell().listen(20_000, open())).rejects.toThrow('AccessDenied');
  });
});
