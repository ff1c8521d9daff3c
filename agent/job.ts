/**
 * A claimed execution while this agent runs it (Job), and the table of them (JobTable).
 *
 * A job's database writes go through one queue, in order (start, outputs, finish), and are fenced on the claim's
 * attempt: once one of them finds the execution owned by another attempt, or finished by someone else (the
 * monitor, D10), the job is lost, its command is killed, and nothing more is written (invariant 1).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLostError, errorMessage } from '../core/errors';
import type { Execution } from '../core/model';
import type { AgentLogger } from './agent-settings';
import { OutputBuffer } from './output-buffer';
import type { RunningCommand } from './process-runner';

export class Job {
  readonly attempt: number;
  command: RunningCommand | undefined;
  readonly buffer = new OutputBuffer();
  /** Another attempt owns the execution (or it was finished by someone else): write nothing more. */
  lost = false;
  /** The command ended; its finish is being written. */
  finishing = false;
  /** When the command was spawned, and whether that start (pid) reached the database. */
  startedAt: Date | undefined;
  startRecorded = false;
  /** Output flushes to the head and tail columns: at most one pending, at most one per flush interval. */
  readonly flush = { timer: undefined as NodeJS.Timeout | undefined, queued: false, lastAt: performance.now() };
  /** Memory samples taken, and when the next one is due (performance.now()). */
  readonly memory = { samples: 0, nextAt: Number.POSITIVE_INFINITY };
  /** performance.now() until which the lease is known to be ours: the claim's or last renewal's call plus the lease. */
  leaseUntil = Number.POSITIVE_INFINITY;
  /** Signal rows being delivered, so a signal is not delivered twice. */
  readonly signalsInFlight = new Set<number>();
  /** Resolves when the job left the agent (finish written, given up, or lost). */
  readonly ended: Promise<void>;
  readonly #end: () => void;
  #writes: Promise<void> = Promise.resolve();

  constructor(
    readonly execution: Execution,
    private readonly logger: AgentLogger,
    private readonly killGraceMs: number,
  ) {
    this.attempt = execution.attempt;
    let end!: () => void;
    this.ended = new Promise((resolve) => (end = resolve));
    this.#end = end;
  }

  get id(): number {
    return this.execution.id;
  }

  /**
   * Queues a fenced write behind this job's earlier ones; skipped once the job is lost. A LeaseLostError makes the
   * job lost; any other failure is logged. The returned promise never rejects.
   */
  write(what: string, write: () => Promise<void>): Promise<void> {
    this.#writes = this.#writes.then(async () => {
      if (this.lost) return;
      try {
        await write();
      } catch (error) {
        if (error instanceof LeaseLostError) this.loseLease(what);
        else this.logger.error(`could not record ${what} of execution ${this.id}`, { error: errorMessage(error) });
      }
    });
    return this.#writes;
  }

  /** Another attempt owns the execution, or someone finished it: stop the command, write nothing more. */
  loseLease(what: string): void {
    if (this.lost) return;
    this.lost = true;
    this.logger.warn(`execution ${this.id} attempt ${this.attempt} is no longer ours (${what}); killing its process group`);
    if (this.command !== undefined && !this.finishing) void this.command.kill(this.killGraceMs);
  }

  /** Called once the job left the agent. */
  end(): void {
    this.#end();
  }
}

/** The jobs this agent runs, and what it must remember about the ones that left. */
export class JobTable {
  readonly #running = new Map<number, Job>();
  /** Executions launched here whose finish is not recorded: their rows may lack a pid although they ran. */
  readonly unsettled = new Set<number>();
  /** Finishes that could not be written: the worker row then stays for the monitor to find. */
  unrecordedFinishes = 0;
  /** When something last ran here (performance.now()), for the idle timeout. */
  lastBusyAt = performance.now();

  get size(): number {
    return this.#running.size;
  }

  get(executionId: number): Job | undefined {
    return this.#running.get(executionId);
  }

  has(executionId: number): boolean {
    return this.#running.has(executionId);
  }

  all(): Job[] {
    return [...this.#running.values()];
  }

  add(job: Job): void {
    this.#running.set(job.id, job);
    this.unsettled.add(job.id);
    this.markBusy();
  }

  remove(job: Job): void {
    this.#running.delete(job.id);
    this.markBusy();
  }

  markBusy(): void {
    this.lastBusyAt = performance.now();
  }

  /** Waits until nothing runs, or until timeoutMs passed (false); undefined waits as long as it takes. */
  async waitForAll(timeoutMs?: number): Promise<boolean> {
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    while (this.size > 0) {
      const allEnded = Promise.all(this.all().map((job) => job.ended));
      if (deadline === undefined) {
        await allEnded;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const timeout = new AbortController();
      await Promise.race([allEnded, sleep(left, undefined, { signal: timeout.signal }).catch(() => undefined)]);
      timeout.abort();
    }
    return true;
  }
}
