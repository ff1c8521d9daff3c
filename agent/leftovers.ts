/**
 * What dead agents on this host left behind, looked at beside the heartbeat (not in its way: a kill waits out its
 * grace period):
 * - the process groups of commands finished as lost (D10) that still run, such as the detached groups of an agent
 *   killed with SIGKILL, are killed: a lost command must not run on beside its retry;
 * - commands that ended while their agent was dead get their finish recorded from their status file.
 */
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LeaseLostError, errorMessage } from '../core/errors';
import type { ExecutionQueueRepository } from '../db/repositories/execution-queue-repository';
import { reportFinished, type AgentSettings } from './agent-settings';
import type { JobTable } from './job';
import { isLeftoverOf, isProcessGroupAlive } from './proc';
import { describeKill, killProcessGroup } from './process-kill';
import type { WorkerIdentity } from './worker-identity';

/** Lost commands are looked at for this long after they were finished as lost. */
const LEFTOVER_WINDOW_MS = 15 * 60_000;
/** A status file this old is not one whose live agent is still writing its finish. */
const STATUS_SETTLE_MS = 5_000;
const STATUS_FILE = /^(\d+)\.(\d+)\.status$/;

export class LeftoverSweeper {
  #lastSweepAt = Number.NEGATIVE_INFINITY;
  #sweep: Promise<void> | undefined;

  constructor(
    private readonly settings: AgentSettings,
    private readonly queue: ExecutionQueueRepository,
    private readonly jobs: JobTable,
    private readonly identity: WorkerIdentity,
  ) {}

  /** Starts a sweep when leftoverCheckMs passed since the last one and none is under way; never waits for it. */
  sweepIfDue(): void {
    const everyMs = this.settings.leftoverCheckMs;
    if (everyMs <= 0 || this.#sweep !== undefined || performance.now() - this.#lastSweepAt < everyMs) return;
    const { logger } = this.settings;
    this.#lastSweepAt = performance.now();
    this.#sweep = Promise.all([
      this.#killLeftovers(),
      this.#recoverFinishedCommands().catch((error: unknown) =>
        logger.error('could not record the finishes of commands whose agent died', { error: errorMessage(error) }),
      ),
    ])
      .then(() => undefined)
      .catch((error: unknown) => logger.error('could not look for leftovers of lost commands', { error: errorMessage(error) }))
      .finally(() => (this.#sweep = undefined));
  }

  /** Resolves once the sweep under way, if any, is over. */
  async settled(): Promise<void> {
    await this.#sweep;
  }

  /**
   * Kills the process groups this host still runs for commands that were finished as lost. Only members carrying
   * the lost command's instance id and started before the loss are taken for it (isLeftoverOf), so a group
   * that reused the pid, such as the retry, is left alone.
   */
  async #killLeftovers(): Promise<void> {
    const { clock, hostname, killGraceMs, logger } = this.settings;
    const lost = await this.queue.lostCommands(hostname, new Date(clock.now().getTime() - LEFTOVER_WINDOW_MS));
    for (const command of lost) {
      if (!isLeftoverOf(command.pid, command.instanceId, command.lostAt)) continue;
      const outcome = await killProcessGroup(command.pid, killGraceMs);
      logger.warn(`killed what was left of lost execution ${command.executionId}: ${describeKill(command.pid, killGraceMs, outcome)}`, {
        executionId: command.executionId,
        instanceId: command.instanceId,
      });
    }
  }

  /**
   * Records the finishes of this host's commands that ended while their agent was dead: unfinished, run by another
   * worker of this host, the process group gone, and the exit status in the status file. Fenced on the attempt, so
   * a finish by the monitor (worker lost) or by a live agent wins. Status files of finished executions are removed.
   */
  async #recoverFinishedCommands(): Promise<void> {
    const { statusDir: dir, hostname, logger } = this.settings;
    if (dir === undefined) return;
    const names = await readdir(dir).catch(() => [] as string[]);
    const files = names.flatMap((name) => {
      const match = STATUS_FILE.exec(name);
      return match ? [{ id: Number(match[1]), attempt: Number(match[2]), path: join(dir, name) }] : [];
    });
    if (files.length === 0) return;
    const rows = new Map((await this.queue.executionsById(files.map((f) => f.id))).map((e) => [e.id, e]));
    for (const file of files) {
      const execution = rows.get(file.id);
      if (execution === undefined || execution.finishedAt !== null || execution.attempt !== file.attempt) {
        await unlink(file.path).catch(() => undefined);
        continue;
      }
      const { pid, workerId } = execution;
      if (execution.hostname !== hostname || pid === null || this.jobs.has(file.id)) continue;
      if (this.identity.owns(workerId) || isProcessGroupAlive(pid)) continue;
      const info = await stat(file.path).catch(() => undefined);
      const status = /^(\d{1,3})\n$/.exec(await readFile(file.path, 'utf8').catch(() => ''));
      if (info === undefined || status === null || Date.now() - info.mtimeMs < STATUS_SETTLE_MS) continue;
      try {
        await this.queue.finish(file.id, file.attempt, {
          exitStatus: Number(status[1]),
          termSignal: null,
          finishedAt: info.mtime,
          head: execution.outputHead,
          tail: execution.outputTail,
        });
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        await unlink(file.path).catch(() => undefined);
        continue;
      }
      await unlink(file.path).catch(() => undefined);
      logger.warn(`recorded the finish (exit ${status[1]}) of execution ${file.id}, which ended while worker ${workerId} was gone`);
      reportFinished(this.settings, file.id);
    }
  }
}
