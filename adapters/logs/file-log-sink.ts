/**
 * Where a command's whole output goes (D12: kept whole, nothing stripped; the database keeps only its
 * head and tail). The file sink serves local and self-hosted mode; a CloudWatch Logs sink comes later.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '../../core/errors';

/** A byte window of a stored log; the edges move inward to whole characters. */
export interface LogReadOptions {
  offsetBytes?: number;
  maxBytes?: number;
}

/** The log store port: ordered appends per execution. */
export interface LogSink {
  /** Appends a chunk; chunks of one execution are stored in call order. */
  append(executionId: number, chunk: string): Promise<void>;
  /** Releases what the sink holds for the execution; a later append reopens it. */
  close(executionId: number): Promise<void>;
  /** The stored text after every append called before it; '' when nothing was stored. */
  read(executionId: number, options?: LogReadOptions): Promise<string>;
}

const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

/** One file per execution, `<dir>/<executionId>.log` (0600, in a dir created 0700), appended in order. */
export class FileLogSink implements LogSink {
  readonly #dir: string;
  #dirReady: Promise<unknown> | undefined;
  /** The tail of each execution's operation chain: one file, one writer at a time, in call order. */
  readonly #queues = new Map<number, Promise<void>>();
  readonly #handles = new Map<number, FileHandle>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The file that holds an execution's output. */
  pathFor(executionId: number): string {
    return join(this.#dir, `${checkId(executionId)}.log`);
  }

  async append(executionId: number, chunk: string): Promise<void> {
    const path = this.pathFor(executionId);
    if (chunk === '') return this.#enqueue(executionId, async () => {});
    return this.#enqueue(executionId, async () => {
      let handle = this.#handles.get(executionId);
      if (handle === undefined) {
        this.#dirReady ??= mkdir(this.#dir, { recursive: true, mode: PRIVATE_DIR_MODE }).catch((error: unknown) => {
          // Let the next append try again rather than fail for ever.
          this.#dirReady = undefined;
          throw error;
        });
        await this.#dirReady;
        // Output may hold secrets a command printed: readable by the agent's user only.
        handle = await open(path, 'a', PRIVATE_FILE_MODE);
        this.#handles.set(executionId, handle);
      }
      await handle.appendFile(chunk, 'utf8');
    });
  }

  async close(executionId: number): Promise<void> {
    checkId(executionId);
    return this.#enqueue(executionId, async () => {
      const handle = this.#handles.get(executionId);
      if (handle === undefined) return;
      this.#handles.delete(executionId);
      await handle.close();
    });
  }

  /** Closes every open file (agent shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#handles.keys()].map((id) => this.close(id)));
  }

  /** Deletes an execution's output file (retention); a file already gone is not an error. */
  async remove(executionId: number): Promise<void> {
    const path = this.pathFor(executionId);
    return this.#enqueue(executionId, async () => {
      const handle = this.#handles.get(executionId);
      if (handle !== undefined) {
        this.#handles.delete(executionId);
        await handle.close();
      }
      await rm(path, { force: true });
    });
  }

  async read(executionId: number, options: LogReadOptions = {}): Promise<string> {
    const path = this.pathFor(executionId);
    // Wait for the appends already called, but do not fail a read because one of them failed.
    await this.#queues.get(executionId)?.catch(() => undefined);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT') return '';
      throw error;
    }
    const start = options.offsetBytes ?? 0;
    const end = options.maxBytes === undefined ? bytes.length : start + options.maxBytes;
    return decodeWindow(bytes, start, end);
  }

  #enqueue(executionId: number, operation: () => Promise<void>): Promise<void> {
    const previous = this.#queues.get(executionId) ?? Promise.resolve();
    // A failed write rejects its own caller only; the chain goes on.
    const current = previous.catch(() => undefined).then(operation);
    this.#queues.set(executionId, current);
    const forget = (): void => {
      if (this.#queues.get(executionId) === current) this.#queues.delete(executionId);
    };
    current.then(forget, forget);
    return current;
  }
}

/** The execution id, or ValidationError unless it is a positive integer (sinks turn it into names). */
export function checkId(executionId: number): number {
  // The id becomes a file name: only a positive integer may reach the path.
  if (!Number.isSafeInteger(executionId) || executionId <= 0) {
    throw new ValidationError(`execution id must be a positive integer, got ${executionId}`);
  }
  return executionId;
}

/** Decodes bytes[start, end), moving both edges inward so no character is cut (every LogSink reads this way). */
export function decodeWindow(bytes: Buffer, start: number, end: number): string {
  let from = Math.max(0, Math.min(start, bytes.length));
  let to = Math.max(from, Math.min(end, bytes.length));
  while (from < to && isContinuationByte(bytes[from])) from++;
  // A continuation byte at `to` means a character straddles the end: end before its lead byte instead.
  while (to > from && to < bytes.length && isContinuationByte(bytes[to])) to--;
  return bytes.toString('utf8', from, to);
}

const CONTINUATION_MASK = 0b1100_0000;
const CONTINUATION_BITS = 0b1000_0000;

function isContinuationByte(byte: number | undefined): boolean {
  return byte !== undefined && (byte & CONTINUATION_MASK) === CONTINUATION_BITS;
}
