/**
 * The heartbeat: every heartbeatIntervalMs the worker row gets the time, the pids this agent holds and whether it
 * drains, and answers whether the worker is suspended or asked to drain; the leases of the executions it holds are
 * renewed (a lease found taken makes its job lost), pending signals are picked up, and leftovers of dead agents
 * are swept beside it. A worker row found removed (judged lost while the agent was cut off) is registered anew.
 */
import { errorMessage } from '../core/errors';
import type { ExecutionHold, ExecutionQueueRepository } from '../db/repositories/execution-queue-repository';
import type { WorkerRepository } from '../db/repositories/worker-repository';
import type { AgentControl, AgentSettings } from './agent-settings';
import { backoffMs } from './fenced-writes';
import type { JobTable } from './job';
import type { LeftoverSweeper } from './leftovers';
import type { SignalDelivery } from './signals';
import { Waker } from './waker';
import type { WorkerIdentity } from './worker-identity';

export interface HeartbeatParts {
  settings: AgentSettings;
  queue: ExecutionQueueRepository;
  workers: WorkerRepository;
  identity: WorkerIdentity;
  jobs: JobTable;
  signals: SignalDelivery;
  leftovers: LeftoverSweeper;
  control: AgentControl;
  /** Measures the offset from the database's clock again when it is due (a no-op with a given clock). */
  syncClock: () => Promise<void>;
}

export class Heartbeat {
  readonly #waker = new Waker();
  #loop: Promise<void> = Promise.resolve();
  /** Set once every command has ended during a stop: the loop then ends too. */
  #stopped = false;

  constructor(private readonly parts: HeartbeatParts) {}

  start(): void {
    this.#loop = this.#run();
  }

  /** Beats now instead of at the end of the interval (a stop tells the database at once that the worker drains). */
  wake(): void {
    this.#waker.wake();
  }

  /** Ends the loop after the beat under way, if any. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#waker.wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { settings, leftovers, control } = this.parts;
    const intervalMs = settings.heartbeatIntervalMs;
    let failures = 0;
    while (!this.#stopped) {
      await this.#waker.sleep(failures > 0 ? Math.min(backoffMs(failures, intervalMs), intervalMs) : intervalMs);
      if (this.#stopped) break;
      try {
        await this.beat();
        failures = 0;
      } catch (error) {
        failures++;
        settings.logger.error('heartbeat failed; retrying', { error: errorMessage(error), failures });
      }
      if (!control.stopping) leftovers.sweepIfDue();
    }
  }

  async beat(): Promise<void> {
    const { settings, queue, workers, identity, jobs, control } = this.parts;
    const { logger } = settings;
    const workerId = identity.id;
    if (workerId === undefined) return;
    const pids: Record<number, number> = {};
    const holds: ExecutionHold[] = [];
    for (const job of jobs.all()) {
      // A finishing job is still listed and leased until its finish is written (the monitor's contract): a
      // finish that takes retries must not look like a vanished process, nor let another worker reclaim it.
      if (job.lost) continue;
      holds.push({ id: job.id, attempt: job.attempt });
      if (job.command?.pid !== undefined) pids[job.id] = job.command.pid;
    }
    await this.parts.syncClock();
    const now = settings.clock.now();
    const renewedAt = performance.now();
    let flags = await workers.heartbeat(workerId, { now, pids, draining: control.stopping }, { suspended: identity.suspended, draining: false });
    if (flags === undefined) {
      const renewed = await identity.register(now);
      logger.warn(`worker ${workerId} was removed; registered again as worker ${renewed}`);
      flags = { suspended: false, draining: false };
    }
    if (flags.suspended !== identity.suspended) logger.info(flags.suspended ? 'worker suspended: claiming nothing new' : 'worker resumed');
    identity.suspended = flags.suspended;
    if (flags.draining && !control.stopping) {
      logger.info('worker asked to drain; stopping');
      control.stop('drain requested');
    }
    const still = await queue.renewLeases(identity.id ?? workerId, holds, new Date(now.getTime() + settings.leaseMs));
    const current = new Set(still.map((hold) => hold.id));
    for (const hold of holds) {
      const job = jobs.get(hold.id);
      // A job that finished meanwhile dropped out of the renewal by its own finish, not by losing its lease.
      if (job !== undefined && !job.finishing && !current.has(hold.id)) job.loseLease('lease renewal');
      else if (job !== undefined) job.leaseUntil = renewedAt + settings.leaseMs;
    }
    await this.parts.signals.pickUp();
  }
}
