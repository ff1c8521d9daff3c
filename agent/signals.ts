/**
 * Delivers the process_signals rows of the executions this agent runs: SIGTERM and SIGKILL as a group kill (TERM,
 * then KILL after the grace, or at once for SIGKILL: invariant 5), any other signal passed once to the group, and
 * the outcome recorded on the row. Picked up with each heartbeat; a stop waits for the deliveries under way.
 */
import { errorMessage } from '../core/errors';
import type { ExecutionQueueRepository, PendingSignal } from '../db/repositories/execution-queue-repository';
import type { AgentSettings } from './agent-settings';
import type { Job, JobTable } from './job';
import { describeKill, passSignal } from './process-kill';

export class SignalDelivery {
  /** Deliveries in progress; a stop waits for their results to be recorded. */
  readonly #deliveries = new Set<Promise<void>>();

  constructor(
    private readonly settings: AgentSettings,
    private readonly queue: ExecutionQueueRepository,
    private readonly jobs: JobTable,
  ) {}

  /** Starts delivering the pending signals of the running jobs (not awaited: a kill waits out its grace). */
  async pickUp(): Promise<void> {
    // Finishing jobs too: a kill requested just as the leader exited still reaches a grandchild left in the group.
    const jobs = this.jobs.all().filter((job) => !job.lost);
    if (jobs.length === 0) return;
    const signals = await this.queue.pendingSignals(jobs.map((job) => job.id));
    for (const signal of signals) {
      const job = this.jobs.get(signal.executionId);
      // A signal for a later attempt is not ours to answer; one being delivered is not delivered twice.
      if (job === undefined || signal.attempt > job.attempt || job.signalsInFlight.has(signal.id)) continue;
      job.signalsInFlight.add(signal.id);
      const delivery = this.#deliver(job, signal)
        .catch((error: unknown) => {
          // Left undelivered: the next heartbeat tries again (a group already gone is reported as such).
          job.signalsInFlight.delete(signal.id);
          this.settings.logger.error(`could not record delivery of signal ${signal.id}`, { error: errorMessage(error) });
        })
        .finally(() => this.#deliveries.delete(delivery));
      this.#deliveries.add(delivery);
    }
  }

  /** Resolves once the deliveries under way now are recorded (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.#deliveries]);
  }

  async #deliver(job: Job, signal: PendingSignal): Promise<void> {
    const { killGraceMs, logger, clock } = this.settings;
    let result: string;
    const command = job.command;
    // A command started off-thread may not have its pid yet: wait for the spawn rather than call it unstarted.
    await command?.spawned;
    if (signal.attempt < job.attempt) {
      result = `ignored: meant for attempt ${signal.attempt}, attempt ${job.attempt} is running`;
    } else if (command?.pgid === undefined) {
      result = 'no process: the command could not be started';
    } else if (signal.signal === 'SIGTERM' || signal.signal === 'SIGKILL') {
      // TERM first even for KILL (with no grace), so the group always gets the same treatment (invariant 5).
      const graceMs = signal.signal === 'SIGKILL' ? 0 : killGraceMs;
      result = describeKill(command.pgid, graceMs, await command.kill(graceMs));
    } else {
      result = passSignal(command.pgid, signal.signal);
    }
    logger.info(`signal ${signal.id} for execution ${job.id}: ${result}`, { reason: signal.reason });
    await this.queue.recordSignalDelivery(signal.id, { deliveredAt: clock.now(), result });
  }
}
