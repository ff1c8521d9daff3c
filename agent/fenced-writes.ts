/**
 * What a job writes to its execution row, each write fenced on the claim's attempt (invariant 1) and queued on the
 * job (agent/job.ts): the start (pid) before the script may run, the output's head and tail as it comes, and the
 * finish. The start is the gate: the shell waits on fd 3 until its pid is in the database, so no command runs unseen
 * by the monitor and the leftover killer; a start that cannot be written within a lease ends the command unrun.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLostError, errorMessage } from '../core/errors';
import { backoffDelay } from '../core/backoff';
import type { ExecutionHold, ExecutionQueueRepository, FinishRecord, OutputRecord, StartRecord } from '../db/repositories/execution-queue-repository';
import type { AgentSettings } from './agent-settings';
import type { Job } from './job';
import type { OutputBuffer } from './output-buffer';
import { ReportBatcher } from './report-batcher';
import type { CommandResult } from './process-runner';

/** Database errors back off exponentially from the base interval up to this. */
const MAX_BACKOFF_MS = 30_000;
/** A finish is retried this long (the result exists only in memory until it is written). */
export const FINISH_RETRY_MS = 10 * 60_000;
const RETRY_BASE_MS = 200;

export function backoffMs(failures: number, baseMs: number): number {
  return backoffDelay({ baseMs, capMs: MAX_BACKOFF_MS }, failures);
}

export interface RetryOptions {
  /** Whether this error is worth another try; every error but a LeaseLostError by default. */
  retryable?: (error: unknown) => boolean;
  /** The first wait; it doubles up to MAX_BACKOFF_MS. */
  baseMs?: number;
  /** Told of each failure that is tried again. */
  onRetry?: (error: unknown, failures: number) => void;
}

/**
 * Runs `work` until it succeeds, an error that is not retryable, `attempts` tries or `untilMs` have passed (then it
 * throws the last error).
 */
export async function retrying<T>(attempts: number, untilMs: number, work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const deadline = performance.now() + untilMs;
  const retryable = options.retryable ?? ((error: unknown) => !(error instanceof LeaseLostError));
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!retryable(error) || attempt >= attempts || performance.now() >= deadline) throw error;
      options.onRetry?.(error, attempt);
      await sleep(backoffMs(attempt, options.baseMs ?? RETRY_BASE_MS));
    }
  }
}

/**
 * The database columns for the output so far. While nothing was dropped the whole output is the head and the tail
 * is empty, because readers show a non-empty tail as "head, elision, tail".
 */
export function outputColumns(buffer: OutputBuffer): OutputRecord {
  return buffer.truncated ? { head: buffer.head, tail: buffer.tail } : { head: buffer.head + buffer.tail, tail: '' };
}

export class FencedWrites {
  /** Starts and finishes of several jobs that arrive together go in one statement each (report-batcher.ts). */
  readonly #starts: ReportBatcher<ExecutionHold & StartRecord>;
  readonly #finishes: ReportBatcher<ExecutionHold & { finish: FinishRecord }>;

  constructor(
    private readonly queue: ExecutionQueueRepository,
    private readonly settings: AgentSettings,
  ) {
    this.#starts = new ReportBatcher((starts) => queue.recordStarts(starts));
    this.#finishes = new ReportBatcher((finishes) => queue.finishMany(finishes));
  }

  /**
   * Records the pid (written at once: an execution without a pid a minute after its claim is an alarm, invariant 4),
   * then opens the command's gate. The script waits at its gate meanwhile; a start that cannot be written within a
   * lease shuts the gate, so the command ends unrun and says why in its output.
   */
  start(job: Job, pid: number): void {
    const startedAt = this.settings.clock.now();
    job.startedAt = startedAt;
    void job.write('start', async () => {
      try {
        await retrying(Number.POSITIVE_INFINITY, this.settings.leaseMs, () => this.#starts.submit({ id: job.id, attempt: job.attempt, pid, startedAt }));
      } catch (error) {
        if (!(error instanceof LeaseLostError)) {
          job.command?.shut();
          this.output(job, `kuroko agent: the pid could not be recorded (${errorMessage(error)}); the command was not run\n`);
        }
        throw error;
      }
      job.startRecorded = true;
      job.command?.open();
    });
  }

  /** Takes a chunk of output: to the buffer and the log sink at once, to the row at most once per flush interval. */
  output(job: Job, chunk: string): void {
    job.buffer.append(chunk);
    this.settings.logSink.append(job.id, chunk).catch((error: unknown) => {
      this.settings.logger.error(`could not store output of execution ${job.id}`, { error: errorMessage(error) });
    });
    const { flush } = job;
    if (flush.timer === undefined && !flush.queued && !job.finishing && !job.lost) {
      const wait = Math.max(0, flush.lastAt + this.settings.outputFlushMs - performance.now());
      flush.timer = setTimeout(() => this.#flushOutput(job), wait);
    }
  }

  #flushOutput(job: Job): void {
    const { flush } = job;
    flush.timer = undefined;
    if (flush.queued || job.finishing) return;
    flush.queued = true;
    void job.write('output', async () => {
      // Read the buffer when the write runs, so a slow database coalesces several flushes into one.
      flush.queued = false;
      flush.lastAt = performance.now();
      if (job.finishing) return;
      await this.queue.recordOutput(job.id, job.attempt, outputColumns(job.buffer));
    });
  }

  /**
   * Records the command's end with the output so far, retried for FINISH_RETRY_MS; resolves whether it was
   * recorded. Marks the job finishing: no more output flushes, and a lease it loses now no longer kills anything.
   */
  async finish(job: Job, result: CommandResult): Promise<boolean> {
    job.finishing = true;
    if (job.flush.timer !== undefined) clearTimeout(job.flush.timer);
    const finishedAt = this.settings.clock.now();
    let recorded = false;
    await job.write('finish', async () => {
      const finish: FinishRecord = {
        exitStatus: result.exitStatus,
        termSignal: result.termSignal,
        finishedAt,
        ...outputColumns(job.buffer),
        pid: job.command?.pid ?? null,
      };
      // Repeated only when the start never reached the database (a spawn failure, a database hiccup).
      if (!job.startRecorded) finish.startedAt = job.startedAt ?? finishedAt;
      await retrying(Number.POSITIVE_INFINITY, FINISH_RETRY_MS, () => this.#finishes.submit({ id: job.id, attempt: job.attempt, finish }));
      recorded = true;
    });
    return recorded;
  }
}
