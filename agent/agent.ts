/**
 * The worker agent: claims executions, runs each command in its own process group, records pid, output and end
 * fenced on the claim's attempt (invariant 1), heart-beats with the pids it holds, delivers kill signals to whole
 * process groups (invariant 5) and samples memory. It keeps no state that the rows cannot rebuild: a restarted
 * agent registers as a new worker, and what its predecessor held is judged from outside by the monitor (D10).
 *
 * This file puts the parts together and runs the lifecycle (start, drain, stop):
 * - claim-loop.ts: poll, claim, hand to free slots; `nudge()` wakes it, and so does a doorbell (doorbell-listener.ts);
 * - heartbeat.ts: the worker row's heartbeat and the leases' renewal;
 * - job.ts, fenced-writes.ts, job-runner.ts: one claimed execution, its fenced writes (pid before the script runs,
 *   output, finish), and running it;
 * - signals.ts, process-kill.ts: process_signals, TERM then KILL of the group;
 * - leftovers.ts: what dead agents on this host left behind;
 * - process-runner.ts, child-watch.ts: process group spawning; proc.ts, memory-sampler.ts: /proc.
 */
import { mkdir } from 'node:fs/promises';
import { errorMessage } from '../core/errors';
import { databaseAlignedClock } from '../db/database-clock';
import { isDatabaseUnavailableError } from '../db/db-errors';
import { retryReason } from '../db/dialects/data-api-retry';
import { createIdGenerator } from '../db/id-generator';
import { ExecutionQueueRepository } from '../db/repositories/execution-queue-repository';
import { WorkerRepository } from '../db/repositories/worker-repository';
import { resolveAgentSettings, type AgentOptions } from './agent-settings';
import { ClaimLoop } from './claim-loop';
import { DoorbellListener } from './doorbell-listener';
import { FINISH_RETRY_MS, FencedWrites, retrying } from './fenced-writes';
import { Heartbeat } from './heartbeat';
import { JobTable } from './job';
import { JobRunner } from './job-runner';
import { LeftoverSweeper } from './leftovers';
import { SignalDelivery } from './signals';
import { WorkerIdentity } from './worker-identity';

export {
  DEFAULT_AGENT_SLOTS,
  DEFAULT_DRAIN_GRACE_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_LEFTOVER_CHECK_MS,
  DEFAULT_OUTPUT_FLUSH_MS,
  DEFAULT_POLL_INTERVAL_MS,
  silentAgentLogger,
  type AgentLogger,
  type AgentOptions,
} from './agent-settings';
export { outputColumns } from './fenced-writes';
export { describeKill } from './process-kill';

/** How often the memory schedule is looked at; each group is sampled on its own clamp(n², 1 s, 30 min) schedule. */
const MEMORY_TICK_MS = 1_000;
/** How often the offset from the database's clock is measured again. */
const CLOCK_SYNC_MS = 60_000;
/** Deregistration is retried this many times. */
const DEREGISTER_ATTEMPTS = 5;
/** How long a start keeps trying to register while the database fails for now, and its first wait. */
export const REGISTER_RETRY_MS = 60_000;
const REGISTER_RETRY_BASE_MS = 500;

export interface Agent {
  /** The worker row's id; undefined before start(). */
  readonly workerId: number | undefined;
  /** Registers the worker and starts claiming. */
  start(): Promise<void>;
  /** Drains: claims nothing more, lets commands finish within the drain grace, kills the rest; resolves with `done`. */
  stop(reason?: string): Promise<void>;
  /** Resolves once the agent has stopped and deregistered. */
  readonly done: Promise<void>;
  /**
   * Looks for work now instead of at the next poll: the local mode calls it after a step queued a command, and any
   * outside signal that work is waiting (a doorbell) can.
   */
  nudge(): void;
}

/** Creates a worker agent; nothing happens until start(). */
export function createAgent(options: AgentOptions): Agent {
  // Without a clock given, the host's clock aligned on the database's: rows stamped minutes off would make the
  // monitor judge this worker lost at once (behind) or too late (ahead).
  const aligned = options.clock === undefined ? databaseAlignedClock(options.database.db, options.database.dialect) : undefined;
  const settings = resolveAgentSettings(aligned === undefined ? options : { ...options, clock: aligned });
  const { clock, logger, hostname, queues, slots } = settings;
  const ids = options.ids ?? createIdGenerator(options.database.db);
  const queue = new ExecutionQueueRepository(options.database, ids);
  const workers = new WorkerRepository(options.database.db, ids);

  const lifecycle = {
    started: false,
    /** A stop began: nothing new is claimed. */
    stopping: false,
    /** A registration in flight; a stop waits for it, so its row is deregistered and no loop starts after. */
    registering: Promise.resolve(),
    memoryTimer: undefined as NodeJS.Timeout | undefined,
    draining: undefined as Promise<void> | undefined,
  };
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const control = {
    get stopping() {
      return lifecycle.stopping;
    },
    stop: (reason: string) => void stop(reason),
  };

  const identity = new WorkerIdentity(workers, { hostname, queues, slots });
  const jobs = new JobTable();
  const writes = new FencedWrites(queue, settings);
  const runner = new JobRunner(settings, queue, writes, jobs, () => claims.wake());
  const claims = new ClaimLoop({ settings, queue, identity, jobs, control, launch: (execution, leaseUntil) => runner.launch(execution, leaseUntil) });
  const signals = new SignalDelivery(settings, queue, jobs);
  const leftovers = new LeftoverSweeper(settings, queue, jobs, identity);
  let clockSyncedAt = Number.NEGATIVE_INFINITY;
  const syncClock = async (): Promise<void> => {
    if (aligned === undefined || performance.now() - clockSyncedAt < CLOCK_SYNC_MS) return;
    clockSyncedAt = performance.now();
    await aligned.sync().catch((error: unknown) => logger.warn('could not read the database clock', { error: errorMessage(error) }));
  };
  const heartbeat = new Heartbeat({ settings, queue, workers, identity, jobs, signals, leftovers, control, syncClock });
  const doorbell = options.doorbell && new DoorbellListener(options.doorbell, (hints) => claims.wakeForWork(hints), logger, settings.pollIntervalMs);

  const drain = async (reason: string): Promise<void> => {
    lifecycle.stopping = true;
    await lifecycle.registering.catch(() => undefined);
    const claimsSettled = await claims.stop();
    doorbell?.stop();
    logger.info(`stopping (${reason}): claims are over; waiting up to ${settings.drainGraceMs} ms for ${jobs.size} command(s)`);
    // Tell the database at once that this worker drains, rather than at the next heartbeat.
    heartbeat.wake();
    if (!(await jobs.waitForAll(settings.drainGraceMs))) {
      logger.warn(`drain grace of ${settings.drainGraceMs} ms is over; killing ${jobs.size} command(s)`);
      for (const job of jobs.all()) if (!job.finishing) void job.command?.kill(settings.killGraceMs);
      await jobs.waitForAll();
    }
    await heartbeat.stop();
    await Promise.all([signals.settled(), leftovers.settled()]);
    if (lifecycle.memoryTimer !== undefined) clearInterval(lifecycle.memoryTimer);
    const workerId = identity.id;
    if (workerId !== undefined) {
      if (jobs.unrecordedFinishes > 0) {
        logger.error(`${jobs.unrecordedFinishes} finish(es) could not be recorded; leaving worker ${workerId} for the monitor`);
      } else if (!claimsSettled) {
        // Its stale row makes the monitor finish what the lost claim holds (worker lost), so retry and skip apply.
        logger.error(`claims whose answer was lost may remain; leaving worker ${workerId} for the monitor`);
      } else {
        await retrying(DEREGISTER_ATTEMPTS, FINISH_RETRY_MS, () => workers.deregister(workerId)).catch((error: unknown) =>
          logger.error(`could not deregister worker ${workerId}`, { error: errorMessage(error) }),
        );
      }
    }
    logger.info('stopped');
  };

  const stop = (reason = 'stop requested'): Promise<void> => {
    lifecycle.draining ??= drain(reason).finally(resolveDone);
    return done;
  };

  /**
   * Registers the worker, trying again while the failure is the database's for now (unreachable, a dropped, throttled
   * or failed Data API call) for up to REGISTER_RETRY_MS: an agent that starts during a blip must not exit (chaos
   * scenario 3 lost both its agents so). A retry after an attempt whose answer was lost adopts the row that attempt
   * wrote (WorkerIdentity.register) rather than leaving it behind for the monitor to report lost.
   */
  const registerWhenReachable = (): Promise<number> =>
    retrying(Number.POSITIVE_INFINITY, REGISTER_RETRY_MS, () => identity.register(clock.now()), {
      retryable: (error) => !lifecycle.stopping && (isDatabaseUnavailableError(error) || retryReason(error) !== undefined),
      baseMs: REGISTER_RETRY_BASE_MS,
      onRetry: (error, failures) => logger.warn('could not register the worker; retrying', { error: errorMessage(error), failures }),
    });

  const start = async (): Promise<void> => {
    if (lifecycle.started || lifecycle.stopping) throw new Error('the agent was already started or stopped');
    lifecycle.started = true;
    lifecycle.registering = (async () => {
      // The shells write their exit status there: it must exist before the first command does.
      if (settings.statusDir !== undefined) await mkdir(settings.statusDir, { recursive: true });
      await syncClock();
      const workerId = await registerWhenReachable();
      jobs.markBusy();
      logger.info(`worker ${workerId} on ${hostname} serves ${queues.join(', ')} with ${slots} slot(s)`);
      if (lifecycle.stopping) return;
      claims.start();
      doorbell?.start();
      heartbeat.start();
      lifecycle.memoryTimer = setInterval(() => {
        runner.expireLeases();
        runner.sampleMemory();
      }, Math.min(MEMORY_TICK_MS, Math.max(1, settings.memorySchedule(0))));
    })();
    await lifecycle.registering;
  };

  return {
    get workerId() {
      return identity.id;
    },
    start,
    stop,
    done,
    nudge: () => claims.wake(),
  };
}
