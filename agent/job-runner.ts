/**
 * Runs claimed executions: starts each command gated in its own process group (process-runner.ts), routes its pid,
 * output and end through the fenced writes, settles the job when its finish is written, and samples the memory of
 * the groups on their Kuroko2 schedule.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors';
import type { Execution } from '../core/model';
import type { ExecutionQueueRepository } from '../db/repositories/execution-queue-repository';
import { reportFinished, type AgentSettings } from './agent-settings';
import type { FencedWrites } from './fenced-writes';
import { Job, type JobTable } from './job';
import { sampleProcessGroupRss } from './memory-sampler';
import type { CommandResult } from './process-runner';

export class JobRunner {
  constructor(
    private readonly settings: AgentSettings,
    private readonly queue: ExecutionQueueRepository,
    private readonly writes: FencedWrites,
    private readonly jobs: JobTable,
    /** Called whenever a job left the agent: a slot is free (the claim loop's wake). */
    private readonly onJobEnded: () => void,
  ) {}

  /** Where the shell of an execution's attempt writes its exit status (options.statusDir). */
  statusFileOf(executionId: number, attempt: number): string {
    return join(this.settings.statusDir ?? '.', `${executionId}.${attempt}.status`);
  }

  /**
   * A command whose lease could not be renewed for a whole lease (the database unreachable from here) is killed by
   * its own agent: once the monitor judges the worker lost (a threshold longer than the lease and the kill grace) and
   * someone retries, the retry must not run beside it. Its finish is not written; the monitor finishes it as lost.
   */
  expireLeases(): void {
    const now = performance.now();
    for (const job of this.jobs.all()) {
      if (!job.lost && !job.finishing && now >= job.leaseUntil) job.loseLease(`its lease of ${this.settings.leaseMs} ms ran out unrenewed`);
    }
  }

  launch(execution: Execution, leaseUntil: number): void {
    const { settings } = this;
    const job = new Job(execution, settings.logger, settings.killGraceMs);
    job.leaseUntil = leaseUntil;
    this.jobs.add(job);
    const command = settings.startCommand(
      // Gated: the script runs only once its pid is in the database (FencedWrites.start); an agent that dies before
      // the write takes the command's gate with it.
      {
        shell: execution.shell,
        env: execution.env,
        shellPath: settings.shellPath,
        inheritEnv: settings.inheritEnv,
        gated: true,
        ...(settings.runAs !== undefined ? { runAs: settings.runAs } : {}),
        ...(settings.statusDir !== undefined ? { statusFile: this.statusFileOf(execution.id, execution.attempt) } : {}),
      },
      {
        onSpawn: (pid) => {
          // The first sample waits one interval, so a short command costs no memory statement at all.
          job.memory.nextAt = performance.now() + settings.memorySchedule(0);
          this.writes.start(job, pid);
        },
        onOutput: (chunk) => this.writes.output(job, chunk),
      },
    );
    job.command = command;
    void command.done
      .then((result) => this.#complete(job, result))
      .catch((error: unknown) => settings.logger.error(`execution ${execution.id} ended badly`, { error: errorMessage(error) }))
      .finally(() => {
        this.jobs.remove(job);
        job.end();
        this.onJobEnded();
      });
  }

  async #complete(job: Job, result: CommandResult): Promise<void> {
    const { logger, logSink, statusDir } = this.settings;
    const finishing = this.writes.finish(job, result);
    if (result.hookError !== undefined) logger.error(`output hook failed for execution ${job.id}`, { error: result.hookError });
    const recorded = await finishing;
    if (!recorded && !job.lost) this.jobs.unrecordedFinishes++;
    else this.jobs.unsettled.delete(job.id);
    await logSink.close(job.id).catch((error: unknown) => {
      logger.error(`could not close the log of execution ${job.id}`, { error: errorMessage(error) });
    });
    if (!recorded) return;
    logger.info(`execution ${job.id} finished`, { exitStatus: result.exitStatus, termSignal: result.termSignal });
    reportFinished(this.settings, job.id);
    // After the nudge and not awaited: the next step must not wait behind the file system.
    if (statusDir !== undefined) void unlink(this.statusFileOf(job.id, job.attempt)).catch(() => undefined);
  }

  /** Samples the groups whose sample is due; each group keeps its own clamp(n², 1 s, 30 min) schedule. */
  sampleMemory(): void {
    const now = performance.now();
    for (const job of this.jobs.all()) {
      const pgid = job.command?.pgid;
      if (pgid === undefined || job.finishing || job.lost || now < job.memory.nextAt) continue;
      job.memory.samples++;
      job.memory.nextAt = now + this.settings.memorySchedule(job.memory.samples);
      const rssKb = sampleProcessGroupRss(pgid);
      if (rssKb === undefined) continue;
      const { execution } = job;
      this.queue
        .recordMemorySample({
          executionId: execution.id,
          instanceId: execution.instanceId,
          definitionId: execution.definitionId,
          rssKb,
          sampledAt: this.settings.clock.now(),
        })
        .catch((error: unknown) => this.settings.logger.error('could not record a memory sample', { error: errorMessage(error) }));
    }
  }
}
