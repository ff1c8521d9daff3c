/**
 * The whole output of each command in CloudWatch Logs (D12 on AWS): one log stream per execution, created on
 * the first append, written by batched PutLogEvents and read back through GetLogEvents paging.
 *
 * Appends are buffered and sent on an interval and on close, so a chatty command costs a call per second rather
 * than a call per chunk. Each event is a raw output chunk (lines may span events), so concatenating the stream's
 * messages gives the output back byte for byte. Timestamps strictly increase within a stream, which keeps the
 * events in append order however the service breaks ties. A failed send keeps its events and is tried again with
 * a growing delay; close() tries a few times and then reports the failure to its caller.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  CreateLogStreamCommand,
  GetLogEventsCommand,
  PutLogEventsCommand,
  type CloudWatchLogsClient,
  type InputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { errorMessage } from '../../core/errors';
import { awsErrorName, toExternalServiceError } from './aws-errors';
import { checkId, decodeWindow, type LogReadOptions, type LogSink } from '../logs/file-log-sink';
import { backoffDelay } from '../../core/backoff';
import type { Logger } from '../../core/ports';

/** PutLogEvents limits (CloudWatch Logs API reference). */
export const MAX_BATCH_BYTES = 1_048_576;
export const MAX_BATCH_EVENTS = 10_000;
/** Counted per event on top of its UTF-8 message size. */
export const EVENT_OVERHEAD_BYTES = 26;
/** The documented maximum event size is 256 KB (newer pages say 1 MB): stay under the smaller one. */
export const MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES;
/** A batch may not span more than 24 hours. */
const MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000;

const DEFAULT_FLUSH_INTERVAL_MS = 1_000;
const DEFAULT_CLOSE_ATTEMPTS = 5;
const RETRY_BASE_MS = 200;
const MAX_RETRY_DELAY_MS = 30_000;

/** The log stream that holds an execution's output; the API reads it back by this name. */
export function executionLogStreamName(executionId: number): string {
  return `executions/${executionId}`;
}

export type SinkLogger = Pick<Logger, 'warn' | 'error'>;

export interface CloudWatchLogSinkOptions {
  client: CloudWatchLogsClient;
  logGroupName: string;
  /** How often buffered output is sent. */
  flushIntervalMs?: number;
  /** Milliseconds since the epoch for event timestamps (Date.now by default). */
  now?: () => number;
  /** Sends tried by close() before it gives up and rejects. */
  closeAttempts?: number;
  /** Delay before the n-th retry (n from 1); exponential from 200 ms up to 30 s by default. */
  retryDelayMs?: (failures: number) => number;
  logger?: SinkLogger;
}

interface StreamState {
  name: string;
  pending: InputLogEvent[];
  pendingBytes: number;
  created: boolean;
  lastTimestamp: number;
  /** Sends of this stream, one at a time and in order. */
  chain: Promise<void>;
  failures: number;
  /** No timer-driven send before this time (after a failure). */
  retryAt: number;
}

/** A LogSink over CloudWatch Logs. */
export class CloudWatchLogSink implements LogSink {
  readonly #client: CloudWatchLogsClient;
  readonly #group: string;
  readonly #flushIntervalMs: number;
  readonly #now: () => number;
  readonly #closeAttempts: number;
  readonly #retryDelayMs: (failures: number) => number;
  readonly #logger: SinkLogger | undefined;
  readonly #streams = new Map<number, StreamState>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CloudWatchLogSinkOptions) {
    this.#client = options.client;
    this.#group = options.logGroupName;
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
    this.#closeAttempts = options.closeAttempts ?? DEFAULT_CLOSE_ATTEMPTS;
    this.#retryDelayMs = options.retryDelayMs ?? ((n) => backoffDelay({ baseMs: RETRY_BASE_MS, capMs: MAX_RETRY_DELAY_MS }, n));
    this.#logger = options.logger;
  }

  async append(executionId: number, chunk: string): Promise<void> {
    checkId(executionId);
    if (chunk === '') return;
    const state = this.#state(executionId);
    for (const piece of splitUtf8(chunk, MAX_EVENT_BYTES)) {
      const timestamp = Math.max(this.#now(), state.lastTimestamp + 1);
      state.lastTimestamp = timestamp;
      state.pending.push({ timestamp, message: piece });
      state.pendingBytes += Buffer.byteLength(piece, 'utf8') + EVENT_OVERHEAD_BYTES;
    }
    // A full batch goes out at once; anything less waits for the interval.
    if (state.pending.length >= MAX_BATCH_EVENTS || state.pendingBytes >= MAX_BATCH_BYTES) void this.#flushQuietly(state);
    this.#ensureTimer();
  }

  /** Sends what is buffered for the execution and forgets it; rejects if the output could not be sent. */
  async close(executionId: number): Promise<void> {
    checkId(executionId);
    const state = this.#streams.get(executionId);
    if (state === undefined) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#flush(state);
        break;
      } catch (error) {
        // The events stay buffered: the interval keeps trying while the agent lives.
        if (attempt >= this.#closeAttempts) throw error;
        await delay(this.#retryDelayMs(attempt));
      }
    }
    // An append during the last send keeps the stream open; the interval sends it.
    if (state.pending.length === 0 && this.#streams.get(executionId) === state) this.#streams.delete(executionId);
    this.#stopTimerIfIdle();
  }

  /** Closes every open stream (agent shutdown); rejects with the first failure after trying all. */
  async closeAll(): Promise<void> {
    const results = await Promise.allSettled([...this.#streams.keys()].map((id) => this.close(id)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async read(executionId: number, options: LogReadOptions = {}): Promise<string> {
    checkId(executionId);
    const state = this.#streams.get(executionId);
    if (state !== undefined) await this.#flush(state).catch(() => undefined);
    const parts: string[] = [];
    let token: string | undefined;
    for (;;) {
      let output;
      try {
        output = await this.#client.send(
          new GetLogEventsCommand({
            logGroupName: this.#group,
            logStreamName: executionLogStreamName(executionId),
            startFromHead: true,
            ...(token !== undefined ? { nextToken: token } : {}),
          }),
        );
      } catch (error) {
        if (awsErrorName(error) === 'ResourceNotFoundException') return '';
        throw toExternalServiceError('logs', 'GetLogEvents', error);
      }
      for (const event of output.events ?? []) parts.push(event.message ?? '');
      // The end of the stream is when the service hands back the token it was given.
      if (output.nextForwardToken === undefined || output.nextForwardToken === token) break;
      token = output.nextForwardToken;
    }
    const bytes = Buffer.from(parts.join(''), 'utf8');
    const start = options.offsetBytes ?? 0;
    const end = options.maxBytes === undefined ? bytes.length : start + options.maxBytes;
    return decodeWindow(bytes, start, end);
  }

  /** Events buffered and not yet sent, over all streams (tests, shutdown logs). */
  get pendingEvents(): number {
    let n = 0;
    for (const state of this.#streams.values()) n += state.pending.length;
    return n;
  }

  #state(executionId: number): StreamState {
    let state = this.#streams.get(executionId);
    if (state === undefined) {
      state = {
        name: executionLogStreamName(executionId),
        pending: [],
        pendingBytes: 0,
        created: false,
        lastTimestamp: 0,
        chain: Promise.resolve(),
        failures: 0,
        retryAt: 0,
      };
      this.#streams.set(executionId, state);
    }
    return state;
  }

  #ensureTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#flushIntervalMs);
    // Buffered output must not keep a finished agent alive; close() and closeAll() send what is left.
    this.#timer.unref();
  }

  #stopTimerIfIdle(): void {
    if (this.#timer !== undefined && this.pendingEvents === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = this.#now();
    for (const state of this.#streams.values()) {
      if (state.pending.length > 0 && now >= state.retryAt) void this.#flushQuietly(state);
    }
    this.#stopTimerIfIdle();
  }

  async #flushQuietly(state: StreamState): Promise<void> {
    try {
      await this.#flush(state);
    } catch (error) {
      this.#logger?.warn(`could not send output to log stream ${state.name}; will retry`, {
        error: errorMessage(error),
        failures: state.failures,
      });
    }
  }

  /** Sends every event buffered when the send runs; sends of one stream never overlap. */
  #flush(state: StreamState): Promise<void> {
    const run = state.chain.catch(() => undefined).then(() => this.#send(state));
    state.chain = run;
    return run;
  }

  async #send(state: StreamState): Promise<void> {
    while (state.pending.length > 0) {
      const batch = takeBatch(state.pending);
      try {
        if (!state.created) await this.#createStream(state);
        const output = await this.#client.send(
          new PutLogEventsCommand({ logGroupName: this.#group, logStreamName: state.name, logEvents: batch }),
        );
        const rejected = output.rejectedLogEventsInfo;
        if (rejected !== undefined) this.#logger?.warn(`CloudWatch Logs rejected events of ${state.name}`, { ...rejected });
      } catch (error) {
        // Put the batch back in front: nothing is lost or reordered, and the next send starts with it.
        state.pending.unshift(...batch);
        if (awsErrorName(error) === 'ResourceNotFoundException') state.created = false;
        state.failures++;
        state.retryAt = this.#now() + this.#retryDelayMs(state.failures);
        throw toExternalServiceError('logs', `PutLogEvents to ${state.name}`, error);
      }
      state.pendingBytes -= batch.reduce((sum, e) => sum + Buffer.byteLength(e.message ?? '', 'utf8') + EVENT_OVERHEAD_BYTES, 0);
      state.failures = 0;
      state.retryAt = 0;
    }
  }

  async #createStream(state: StreamState): Promise<void> {
    try {
      await this.#client.send(new CreateLogStreamCommand({ logGroupName: this.#group, logStreamName: state.name }));
    } catch (error) {
      // A second attempt of the same execution writes on in the stream its first attempt created.
      if (awsErrorName(error) !== 'ResourceAlreadyExistsException') throw error;
    }
    state.created = true;
  }
}

/** Removes and returns the longest prefix of `pending` that fits one PutLogEvents call. */
function takeBatch(pending: InputLogEvent[]): InputLogEvent[] {
  let bytes = 0;
  let count = 0;
  const first = pending[0]?.timestamp ?? 0;
  for (const event of pending) {
    const size = Buffer.byteLength(event.message ?? '', 'utf8') + EVENT_OVERHEAD_BYTES;
    if (count >= MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES || (event.timestamp ?? 0) - first > MAX_BATCH_SPAN_MS) break;
    bytes += size;
    count++;
  }
  return pending.splice(0, Math.max(1, count));
}

/** Splits text into pieces of at most `maxBytes` UTF-8 bytes without cutting a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return [text];
  const pieces: string[] = [];
  let piece = '';
  let pieceBytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (pieceBytes + size > maxBytes) {
      pieces.push(piece);
      piece = '';
      pieceBytes = 0;
    }
    piece += char;
    pieceBytes += size;
  }
  if (piece !== '') pieces.push(piece);
  return pieces;
}

