import {
  CloudWatchLogsClient,
  CreateLogStreamCommand,
  GetLogEventsCommand,
  PutLogEventsCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  ThrottlingException,
  type InputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CloudWatchLogSink,
  EVENT_OVERHEAD_BYTES,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_EVENT_BYTES,
  executionLogStreamName,
  splitUtf8,
} from '../../adapters/aws/cloudwatch-log-sink';
import { ExternalServiceError } from '../../core/errors';
import { waitFor } from '../helpers/wait-for';

const GROUP = '/kuroko/test/executions';
const logs = mockClient(CloudWatchLogsClient);
const client = new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

/** A sink whose timer never fires during a test: sends happen on close() or full batches only. */
const manualSink = (over: Partial<ConstructorParameters<typeof CloudWatchLogSink>[0]> = {}) =>
  new CloudWatchLogSink({ client, logGroupName: GROUP, flushIntervalMs: 3_600_000, retryDelayMs: () => 1, ...over });

const putBatches = (): InputLogEvent[][] =>
  logs.commandCalls(PutLogEventsCommand).map((call) => call.args[0].input.logEvents ?? []);

const batchBytes = (events: InputLogEvent[]) =>
  events.reduce((sum, e) => sum + Buffer.byteLength(e.message ?? '', 'utf8') + EVENT_OVERHEAD_BYTES, 0);

beforeEach(() => {
  logs.reset();
  logs.on(CreateLogStreamCommand).resolves({});
  logs.on(PutLogEventsCommand).resolves({});
});
afterEach(() => logs.reset());

describe('CloudWatchLogSink: writing', () => {
  it('creates the execution stream on the first send and sends chunks in order with rising timestamps', async () => {
    const sink = manualSink({ now: () => 1_000 });
    await sink.append(7, 'one\n');
    await sink.append(7, 'two');
    await sink.append(7, '');
    expect(logs.commandCalls(PutLogEventsCommand)).toHaveLength(0);
    await sink.close(7);

    const create = logs.commandCalls(CreateLogStreamCommand);
    expect(create).toHaveLength(1);
    expect(create[0]!.args[0].input).toEqual({ logGroupName: GROUP, logStreamName: executionLogStreamName(7) });
    const batches = putBatches();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((e) => e.message)).toEqual(['one\n', 'two']);
    // Same wall-clock millisecond, still strictly increasing: the service cannot reorder them.
    expect(batches[0]!.map((e) => e.timestamp)).toEqual([1_000, 1_001]);
  });

  it('keeps separate streams per execution and creates each once', async () => {
    const sink = manualSink();
    await sink.append(1, 'a');
    await sink.append(2, 'b');
    await sink.close(1);
    await sink.append(2, 'c');
    await sink.close(2);
    const streams = logs.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input.logStreamName);
    expect(streams).toEqual(['executions/1', 'executions/2']);
    const byStream = logs.commandCalls(PutLogEventsCommand).map((c) => [c.args[0].input.logStreamName, c.args[0].input.logEvents?.map((e) => e.message).join('')]);
    expect(byStream).toEqual([
      ['executions/1', 'a'],
      ['executions/2', 'bc'],
    ]);
  });

  it('writes on in a stream that already exists (a second attempt of the execution)', async () => {
    logs.on(CreateLogStreamCommand).rejects(new ResourceAlreadyExistsException({ message: 'exists', $metadata: {} }));
    const sink = manualSink();
    await sink.append(3, 'again');
    await sink.close(3);
    expect(putBatches().flat().map((e) => e.message)).toEqual(['again']);
  });

  it('splits a send at 10,000 events per call', async () => {
    const sink = manualSink();
    for (let i = 0; i < MAX_BATCH_EVENTS + 5; i++) await sink.append(4, `${i}\n`);
    await sink.close(4);
    const batches = putBatches();
    expect(batches[0]).toHaveLength(MAX_BATCH_EVENTS);
    for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(MAX_BATCH_EVENTS);
    expect(batches.flat().map((e) => e.message).join('')).toBe(Array.from({ length: MAX_BATCH_EVENTS + 5 }, (_, i) => `${i}\n`).join(''));
  });

  it('splits a send at 1 MB per call counting 26 bytes per event, and sends a full batch without waiting', async () => {
    const sink = manualSink();
    const chunk = 'x'.repeat(100_000);
    for (let i = 0; i < 25; i++) await sink.append(5, chunk);
    // 25 x 100 kB is over 1 MB: the first full batch left before close().
    await waitFor(() => logs.commandCalls(PutLogEventsCommand).length >= 1);
    await sink.close(5);
    const batches = putBatches();
    expect(batches.length).toBeGreaterThanOrEqual(3);
    for (const batch of batches) expect(batchBytes(batch)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(batches.flat().map((e) => e.message).join('')).toBe(chunk.repeat(25));
    const timestamps = batches.flat().map((e) => e.timestamp ?? 0);
    expect([...timestamps].sort((a, b) => a - b)).toEqual(timestamps);
  });

  it('splits a chunk larger than one event without cutting a character', async () => {
    const sink = manualSink();
    const big = 'é'.repeat(MAX_EVENT_BYTES); // two bytes each: twice the event limit
    await sink.append(6, big);
    await sink.close(6);
    const events = putBatches().flat();
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const e of events) expect(Buffer.byteLength(e.message ?? '', 'utf8')).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(events.map((e) => e.message).join('')).toBe(big);
    expect(splitUtf8('aé', 2)).toEqual(['a', 'é']);
  });

  it('sends on its interval without a close', async () => {
    const sink = new CloudWatchLogSink({ client, logGroupName: GROUP, flushIntervalMs: 10 });
    await sink.append(8, 'tick');
    await waitFor(() => putBatches().flat().some((e) => e.message === 'tick'), { description: 'the interval send' });
    await sink.close(8);
    expect(putBatches().flat().map((e) => e.message)).toEqual(['tick']);
  });
});

describe('CloudWatchLogSink: failures', () => {
  it('retries a throttled send and delivers every event exactly once, in order', async () => {
    logs
      .on(PutLogEventsCommand)
      .rejectsOnce(new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }))
      .resolves({});
    const sink = manualSink();
    await sink.append(9, 'a');
    await sink.append(9, 'b');
    await sink.close(9);
    const calls = putBatches();
    expect(calls).toHaveLength(2);
    expect(calls[0]!.map((e) => e.message)).toEqual(['a', 'b']);
    expect(calls[1]!.map((e) => e.message)).toEqual(['a', 'b']);
  });

  it('keeps buffered events after the interval send is throttled and sends them with the later ones', async () => {
    logs
      .on(PutLogEventsCommand)
      .rejectsOnce(new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }))
      .resolves({});
    const warnings: string[] = [];
    const sink = new CloudWatchLogSink({
      client,
      logGroupName: GROUP,
      flushIntervalMs: 5,
      retryDelayMs: () => 1,
      logger: { warn: (m) => warnings.push(m), error: () => {} },
    });
    await sink.append(10, 'first ');
    await waitFor(() => warnings.length > 0, { description: 'the throttled send' });
    await sink.append(10, 'second');
    await sink.close(10);
    const delivered = logs.commandCalls(PutLogEventsCommand).slice(1).flatMap((c) => c.args[0].input.logEvents ?? []);
    expect(delivered.map((e) => e.message).join('')).toBe('first second');
    expect(warnings[0]).toContain('executions/10');
  });

  it('gives up on close after its attempts with an ExternalServiceError marked retryable', async () => {
    logs.on(PutLogEventsCommand).rejects(new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }));
    const sink = manualSink({ closeAttempts: 3 });
    await sink.append(11, 'lost?');
    const error = await sink.close(11).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as ExternalServiceError).retryable).toBe(true);
    expect(logs.commandCalls(PutLogEventsCommand)).toHaveLength(3);
    expect(sink.pendingEvents).toBe(1);
  });

  it('creates the stream again when it vanished', async () => {
    logs
      .on(PutLogEventsCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'The specified log stream does not exist.', $metadata: {} }))
      .resolves({});
    const sink = manualSink();
    await sink.append(12, 'x');
    await sink.close(12);
    expect(logs.commandCalls(CreateLogStreamCommand)).toHaveLength(2);
  });

  it('rejects a bad execution id', async () => {
    await expect(manualSink().append(0, 'x')).rejects.toThrow('positive integer');
  });
});

describe('CloudWatchLogSink: reading', () => {
  it('pages through GetLogEvents until the token comes back unchanged, then windows the bytes', async () => {
    logs
      .on(GetLogEventsCommand, { nextToken: undefined })
      .resolves({ events: [{ message: 'héllo ', timestamp: 1 }], nextForwardToken: 'f/1' })
      .on(GetLogEventsCommand, { nextToken: 'f/1' })
      .resolves({ events: [{ message: 'wörld', timestamp: 2 }], nextForwardToken: 'f/2' })
      .on(GetLogEventsCommand, { nextToken: 'f/2' })
      .resolves({ events: [], nextForwardToken: 'f/2' });
    const sink = manualSink();
    expect(await sink.read(13)).toBe('héllo wörld');
    const calls = logs.commandCalls(GetLogEventsCommand);
    expect(calls.map((c) => c.args[0].input.nextToken)).toEqual([undefined, 'f/1', 'f/2']);
    expect(calls[0]!.args[0].input).toMatchObject({ logGroupName: GROUP, logStreamName: 'executions/13', startFromHead: true });
    // Byte 2 is inside 'é': the window moves inward to whole characters.
    expect(await sink.read(13, { offsetBytes: 2, maxBytes: 6 })).toBe('llo w');
  });

  it('sends what is buffered before reading', async () => {
    logs.on(GetLogEventsCommand).resolves({ events: [{ message: 'buffered', timestamp: 1 }], nextForwardToken: 't' });
    const sink = manualSink();
    await sink.append(14, 'buffered');
    await sink.read(14);
    expect(putBatches().flat().map((e) => e.message)).toEqual(['buffered']);
  });

  it('reads an execution without a stream as empty', async () => {
    logs.on(GetLogEventsCommand).rejects(new ResourceNotFoundException({ message: 'nope', $metadata: {} }));
    expect(await manualSink().read(15)).toBe('');
  });
});
