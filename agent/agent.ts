/**
 * The worker agent: claims executions, runs each command in its own process group, records pid, output and end
 * fenced on the claim's attempt (invariant 1), heart-beats with the pids it holds, delivers kill signals to whole
 * process groups (invariant 5) and samples memory. It keeps no state that the rows cannot rebuild: a restarted
 * agent registers as a new worker, and what its predecessor held is judged from outside by the monitor (D10).
 */
import { mkdir, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { LeaseLostError, errorMessage } from '../core/errors';
import { DEFAULT_QUEUE, type Execution } from '../core/model';
import type { Clock, IdGenerator } from '../core/ports';
import type { DatabaseHandle } from '../db/connection';
import { databaseAlignedClock } from '../db/database-clock';
import { createIdGenerator } from '../db/id-generator';
import {
  ExecutionQueueRepository,
  type ExecutionHold,
  type FinishRecord,
  type OutputRecord,
  type PendingSignal,
} from '../db/repositories/execution-queue-repository';
import { WorkerRepository } from '../db/repositories/worker-repository';
import type { LogSink } from '../adapters/logs/file-log-sink';
import { sampleIntervalMs, sampleProcessGroupRss } from './memory-sampler';
import { OutputBuffer } from './output-buffer';
import type { RunAsUser } from './run-as';
import {
  DEFAULT_SHELL_PATH,
  killProcessGroup,
  isLeftoverOf,
  isProcessGroupAlive,
  startCommand,
  type CommandResult,
  type InheritedEnv,
  type KillOutcome,
  type RunningCommand,
} from './process-runner';

export const DEFAULT_AGENT_SLOTS = 2;
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/** Long enough for several missed heartbeats before the monitor may call the worker lost. */
export const DEFAULT_LEASE_MS = 60_000;
export const DEFAULT_KILL_GRACE_MS = 10_000;
/** Drain plus kill grace stays inside systemd's 90 s TimeoutStopSec on the workers. */
export const DEFAULT_DRAIN_GRACE_MS = 60_000;
/** How often the agent looks for leftover process groups of its host's lost commands (0 turns it off). */
export const DEFAULT_LEFTOVER_CHECK_MS = 30_000;
/** Lost commands are looked at for this long after they were finished as lost. */
const LEFTOVER_WINDOW_MS = 15 * 60_000;
/** Head and tail reach the database at most this often per execution (the whole output streams to the log sink). */
export const DEFAULT_OUTPUT_FLUSH_MS = 1_000;
/** How often the memory schedule is looked at; each group is sampled on its own clamp(n², 1 s, 30 min) schedule. */
const MEMORY_TICK_MS = 1_000;
/** How often the offset from the database's clock is measured again. */
const CLOCK_SYNC_MS = 60_000;
/** Database errors back off exponentially from the poll interval up to this. */
const MAX_BACKOFF_MS = 30_000;
/** Deregistration is retried this many times (a start is retried for a lease: the script waits at its gate). */
const START_WRITE_ATTEMPTS = 5;
/** A finish is retried this long (the result exists only in memory until it is written). */
const FINISH_RETRY_MS = 10 * 60_000;
const RETRY_BASE_MS = 200;
/** A status file this old is not one whose live agent is still writing its finish. */
const STATUS_SETTLE_MS = 5_000;
const STATUS_FILE = /^(\d+)\.(\d+)\.status$/;

export interface AgentLogger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** Drops every message (tests, embedded use). */
export const silentAgentLogger: AgentLogger = { info: () => {}, warn: () => {}, error: () => {} };

export interface AgentOptions {
  database: DatabaseHandle;
  /** Defaults to a hi/lo generator over the database. */
  ids?: IdGenerator;
  /** Times written to rows; scheduling uses the monotonic timer regardless. */
  clock?: Clock;
  hostname?: string;
  queues?: readonly string[];
  slots?: number;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
  leaseMs?: number;
  /** Between SIGTERM and SIGKILL when a command is killed. */
  killGraceMs?: number;
  /** Stop (drain) after this long with nothing running; on-demand workers use it. */
  idleTimeoutMs?: number;
  /**
   * Asked once the idle timeout is reached: may this worker leave? When it answers false (or fails) the agent keeps
   * claiming and asks again after another idle period. On EC2 it keeps a queue's minimum of instances alive.
   */
  mayStopIdle?: (workerId: number) => Promise<boolean>;
  /** How long stop() lets running commands finish before killing them. */
  drainGraceMs?: number;
  outputFlushMs?: number;
  /** Milliseconds to wait after the n-th memory sample (memory-sampler's Kuroko2 schedule by default). */
  memorySchedule?: (sampleCount: number) => number;
  logSink: LogSink;
  shellPath?: string;
  /** HOME, PATH, LANG handed to every command (the command's ENV wins). */
  inheritEnv?: InheritedEnv;
  /** Run every command as this user (`--run-as`, resolved and checked by agent/run-as.ts prepareRunAs). */
  runAs?: RunAsUser;
  /** Called after a finish was recorded (the local mode nudges the processor). */
  onExecutionFinished?: (executionId: number) => void;
  /**
   * How often to kill what is left of this host's commands that were finished as lost (D10), such as the
   * detached groups of an agent that was killed with SIGKILL: a lost command must not run on beside its retry.
   * 0 turns it off (on EC2, systemd's KillMode already kills what a dead agent leaves).
   */
  leftoverCheckMs?: number;
  logger?: AgentLogger;
  /**
   * Where each command's shell writes its exit status when it exits (`<execution>.<attempt>.status`). An agent
   * that starts on the host records, fenced on the attempt, the finishes of commands whose agent died before they
   * ended (their process group gone, their status file there). Undefined turns it off.
   */
  statusDir?: string;
}

export interface Agent {
  /** The worker row's id; undefined before start(). */
  readonly workerId: number | undefined;
  /** Registers the worker and starts claiming. */
  start(): Promise<void>;
  /** Drains: claims nothing more, lets commands finish within the drain grace, kills the rest; resolves with `done`. */
  stop(reason?: string): Promise<void>;
  /** Resolves once the agent has stopped and deregistered. */
  readonly done: Promise<void>;
  /** Looks for work now instead of at the next poll (the local mode calls it after a step queued a command). */
  nudge(): void;
}

/** A claimed execution while this agent runs it. */
interface Job {
  execution: Execution;
  attempt: number;
  command: RunningCommand | undefined;
  buffer: OutputBuffer;
  /** Database writes of this execution, in order: start, outputs, finish. */
  writes: Promise<void>;
  /** Another attempt owns the execution (or it was finished by someone else): write nothing more. */
  lost: boolean;
  /** The command ended; its finish is being written. */
  finishing: boolean;
  flushTimer: NodeJS.Timeout | undefined;
  flushQueued: boolean;
  lastFlushAt: number;
  samples: number;
  nextSampleAt: number;
  signalsInFlight: Set<number>;
  /** When the command was spawned, and whether that start (pid) reached the database. */
  startedAt: Date | undefined;
  startRecorded: boolean;
  /** Resolves when the job left the agent (finish written, given up, or lost). */
  ended: Promise<void>;
  /** performance.now() until which the lease is known to be ours: the claim's or last renewal's call plus the lease. */
  leaseUntil: number;
}

interface Wakeable {
  sleep(ms: number): Promise<void>;
  wake(): void;
}

function wakeable(): Wakeable {
  let pending: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  let woken = false;
  return {
    sleep(ms) {
      if (woken) {
        woken = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending = undefined;
          resolve();
        }, ms);
        pending = { timer, resolve };
      });
    },
    wake() {
      if (pending === undefined) {
        woken = true;
        return;
      }
      clearTimeout(pending.timer);
      const { resolve } = pending;
      pending = undefined;
      resolve();
    },
  };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function backoffMs(failures: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS);
}

/**
 * The database columns for the output so far. While nothing was dropped the whole output is the head and the tail
 * is empty, because readers show a non-empty tail as "head, elision, tail".
 */
export function outputColumns(buffer: OutputBuffer): OutputRecord {
  return buffer.truncated ? { head: buffer.head, tail: buffer.tail } : { head: buffer.head + buffer.tail, tail: '' };
}

/** Says what a group kill (TERM, then KILL after graceMs) did, for the signal row's `result`. */
export function describeKill(pgid: number, graceMs: number, outcome: KillOutcome): string {
  if (outcome.error !== undefined) return `failed: ${outcome.error}`;
  if (!outcome.termSent && !outcome.killSent) return `process group ${pgid} had already ended`;
  const sent = outcome.killSent ? `SIGTERM, then SIGKILL after ${graceMs} ms,` : 'SIGTERM';
  return `${sent} sent to process group ${pgid}; ${outcome.groupEmpty ? 'the group ended' : 'the group is still alive'}`;
}

/** Passes any other signal once to the whole group, without escalation. */
function passSignal(pgid: number, signal: string): string {
  try {
    process.kill(-pgid, signal as NodeJS.Signals);
    return `${signal} sent to process group ${pgid}`;
  } catch (error) {
    return `failed: ${signal} to process group ${pgid}: ${errorMessage(error)}`;
  }
}

/** Creates a worker agent; nothing happens until start(). */
export function createAgent(options: AgentOptions): Agent {
  // Without a clock given, the host's clock aligned on the database's: rows stamped minutes off would make the
  // monitor judge this worker lost at once (behind) or too late (ahead).
  const aligned = options.clock === undefined ? databaseAlignedClock(options.database.db, options.database.dialect) : undefined;
  const clock = options.clock ?? aligned!;
  let clockSyncedAt = Number.NEGATIVE_INFINITY;
  const syncClock = async (): Promise<void> => {
    if (aligned === undefined || performance.now() - clockSyncedAt < CLOCK_SYNC_MS) return;
    clockSyncedAt = performance.now();
    await aligned.sync().catch((error: unknown) => logger.warn('could not read the database clock', { error: errorMessage(error) }));
  };
  const ids = options.ids ?? createIdGenerator(options.database.db);
  const hostname = options.hostname ?? osHostname();
  const queues = options.queues && options.queues.length > 0 ? [...options.queues] : [DEFAULT_QUEUE];
  const slots = options.slots ?? DEFAULT_AGENT_SLOTS;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const drainGraceMs = options.drainGraceMs ?? DEFAULT_DRAIN_GRACE_MS;
  const outputFlushMs = options.outputFlushMs ?? DEFAULT_OUTPUT_FLUSH_MS;
  const memorySchedule = options.memorySchedule ?? sampleIntervalMs;
  const logger = options.logger ?? silentAgentLogger;
  const shellPath = options.shellPath ?? DEFAULT_SHELL_PATH;
  const inheritEnv = options.inheritEnv ?? {};
  const leftoverCheckMs = options.leftoverCheckMs ?? DEFAULT_LEFTOVER_CHECK_MS;
  if (!Number.isSafeInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);

  const queueRepo = new ExecutionQueueRepository(options.database, ids);
  const workerRepo = new WorkerRepository(options.database.db, ids);

  const running = new Map<number, Job>();
  const claimWaker = wakeable();
  const heartbeatWaker = wakeable();
  let workerId: number | undefined;
  /** Every worker id this agent registered as (it registers again when its row was removed). */
  const ownWorkerIds: number[] = [];
  /** Executions launched here whose finish is not recorded: their rows may lack a pid although they ran. */
  const unsettled = new Set<number>();
  /**
   * After a claim failed, until this time (performance.now()) the agent looks for executions claimed under its
   * worker ids that it does not run: a COMMIT that succeeded but whose answer was lost (a connection killed during
   * COMMIT, a Data API commit call that timed out) leaves such claims, which nothing else would ever recover.
   */
  let claimInDoubtUntil: number | undefined;
  let started = false;
  let stopping = false;
  let suspended = false;
  /** Finishes that could not be written: the worker row then stays for the monitor to find. */
  let unrecordedFinishes = 0;
  let lastBusyAt = performance.now();
  let registering: Promise<void> = Promise.resolve();
  let claimLoop: Promise<void> = Promise.resolve();
  let heartbeatLoop: Promise<void> = Promise.resolve();
  let memoryTimer: NodeJS.Timeout | undefined;
  let lastLeftoverCheckAt = Number.NEGATIVE_INFINITY;
  let leftoverCheck: Promise<void> | undefined;
  let stopPromise: Promise<void> | undefined;
  /** Signal deliveries in progress; a stop waits for their results to be recorded. */
  const deliveries = new Set<Promise<void>>();
  /** Set once every command has ended during a stop: the heartbeat loop then ends too. */
  let stopped = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  // ---- one execution ------------------------------------------------------------------------------------------

  const enqueueWrite = (job: Job, what: string, write: () => Promise<void>): Promise<void> => {
    job.writes = job.writes.then(async () => {
      if (job.lost) return;
      try {
        await write();
      } catch (error) {
        if (error instanceof LeaseLostError) leaseLost(job, what);
        else logger.error(`could not record ${what} of execution ${job.execution.id}`, { error: errorMessage(error) });
      }
    });
    return job.writes;
  };

  /** Another attempt owns the execution, or someone finished it (the monitor, D10): stop the command, write nothing. */
  const leaseLost = (job: Job, what: string): void => {
    if (job.lost) return;
    job.lost = true;
    logger.warn(`execution ${job.execution.id} attempt ${job.attempt} is no longer ours (${what}); killing its process group`);
    if (job.command !== undefined && !job.finishing) void job.command.kill(killGraceMs);
  };

  const retrying = async (attempts: number, untilMs: number, write: () => Promise<void>): Promise<void> => {
    const deadline = performance.now() + untilMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        if (error instanceof LeaseLostError || attempt >= attempts || performance.now() >= deadline) throw error;
        await delay(backoffMs(attempt, RETRY_BASE_MS));
      }
    }
  };

  const flushOutput = (job: Job): void => {
    job.flushTimer = undefined;
    if (job.flushQueued || job.finishing) return;
    job.flushQueued = true;
    void enqueueWrite(job, 'output', async () => {
      // Read the buffer when the write runs, so a slow database coalesces several flushes into one.
      job.flushQueued = false;
      job.lastFlushAt = performance.now();
      if (job.finishing) return;
      await queueRepo.recordOutput(job.execution.id, job.attempt, outputColumns(job.buffer));
    });
  };

  const onOutput = (job: Job, chunk: string): void => {
    job.buffer.append(chunk);
    options.logSink.append(job.execution.id, chunk).catch((error: unknown) => {
      logger.error(`could not store output of execution ${job.execution.id}`, { error: errorMessage(error) });
    });
    if (job.flushTimer === undefined && !job.flushQueued && !job.finishing && !job.lost) {
      const wait = Math.max(0, job.lastFlushAt + outputFlushMs - performance.now());
      job.flushTimer = setTimeout(() => flushOutput(job), wait);
    }
  };

  const statusFileOf = (executionId: number, attempt: number): string => join(options.statusDir ?? '.', `${executionId}.${attempt}.status`);

  const launch = (execution: Execution, leaseUntil: number): void => {
    let resolveEnded!: () => void;
    const job: Job = {
      execution,
      attempt: execution.attempt,
      command: undefined,
      buffer: new OutputBuffer(),
      writes: Promise.resolve(),
      lost: false,
      finishing: false,
      flushTimer: undefined,
      flushQueued: false,
      lastFlushAt: performance.now(),
      samples: 0,
      nextSampleAt: Number.POSITIVE_INFINITY,
      signalsInFlight: new Set(),
      startedAt: undefined,
      startRecorded: false,
      ended: new Promise((resolve) => (resolveEnded = resolve)),
      leaseUntil,
    };
    running.set(execution.id, job);
    unsettled.add(execution.id);
    lastBusyAt = performance.now();
    let spawnedPid: number | undefined;
    const command = startCommand(
      // Gated: the script runs only once its pid is in the database, so no command runs unseen by the monitor and
      // the leftover killer (an agent that dies before the write takes the command's gate with it).
      {
        shell: execution.shell,
        env: execution.env,
        shellPath,
        inheritEnv,
        gated: true,
        ...(options.runAs !== undefined ? { runAs: options.runAs } : {}),
        ...(options.statusDir !== undefined ? { statusFile: statusFileOf(execution.id, execution.attempt) } : {}),
      },
      {
        onSpawn: (pid) => {
          spawnedPid = pid;
          const startedAt = clock.now();
          job.startedAt = startedAt;
          // Written at once: an execution without a pid a minute after its claim is an alarm (invariant 4). The
          // script waits at its gate meanwhile; a start that cannot be written within a lease ends it unrun.
          void enqueueWrite(job, 'start', async () => {
            try {
              await retrying(Number.POSITIVE_INFINITY, leaseMs, () => queueRepo.recordStart(execution.id, job.attempt, { pid, startedAt }));
            } catch (error) {
              if (!(error instanceof LeaseLostError)) {
                job.command?.shut();
                onOutput(job, `kuroko agent: the pid could not be recorded (${errorMessage(error)}); the command was not run\n`);
              }
              throw error;
            }
            job.startRecorded = true;
            job.command?.open();
          });
        },
        onOutput: (chunk) => onOutput(job, chunk),
      },
    );
    job.command = command;
    // The first sample waits one interval, so a short command costs no memory statement at all.
    if (spawnedPid !== undefined) job.nextSampleAt = performance.now() + memorySchedule(0);
    void command.done
      .then((result) => complete(job, result))
      .catch((error: unknown) => logger.error(`execution ${execution.id} ended badly`, { error: errorMessage(error) }))
      .finally(() => {
        running.delete(execution.id);
        lastBusyAt = performance.now();
        resolveEnded();
        claimWaker.wake();
      });
  };

  const complete = async (job: Job, result: CommandResult): Promise<void> => {
    job.finishing = true;
    if (job.flushTimer !== undefined) clearTimeout(job.flushTimer);
    if (result.hookError !== undefined) logger.error(`output hook failed for execution ${job.execution.id}`, { error: result.hookError });
    const finishedAt = clock.now();
    let recorded = false;
    await enqueueWrite(job, 'finish', async () => {
      const finish: FinishRecord = {
        exitStatus: result.exitStatus,
        termSignal: result.termSignal,
        finishedAt,
        ...outputColumns(job.buffer),
        pid: job.command?.pid ?? null,
      };
      // Repeated only when the start never reached the database (a spawn failure, a database hiccup).
      if (!job.startRecorded) finish.startedAt = job.startedAt ?? finishedAt;
      await retrying(Number.POSITIVE_INFINITY, FINISH_RETRY_MS, () => queueRepo.finish(job.execution.id, job.attempt, finish));
      recorded = true;
    });
    if (!recorded && !job.lost) unrecordedFinishes++;
    else unsettled.delete(job.execution.id);
    await options.logSink.close(job.execution.id).catch((error: unknown) => {
      logger.error(`could not close the log of execution ${job.execution.id}`, { error: errorMessage(error) });
    });
    if (recorded) {
      logger.info(`execution ${job.execution.id} finished`, { exitStatus: result.exitStatus, termSignal: result.termSignal });
      try {
        options.onExecutionFinished?.(job.execution.id);
      } catch (error) {
        logger.error('onExecutionFinished threw', { error: errorMessage(error) });
      }
      // After the nudge and not awaited: the next step must not wait behind the file system.
      if (options.statusDir !== undefined) void unlink(statusFileOf(job.execution.id, job.attempt)).catch(() => undefined);
    }
  };

  // ---- signals ------------------------------------------------------------------------------------------------

  const deliver = async (job: Job, signal: PendingSignal): Promise<void> => {
    let result: string;
    const command = job.command;
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
    logger.info(`signal ${signal.id} for execution ${job.execution.id}: ${result}`, { reason: signal.reason });
    await queueRepo.recordSignalDelivery(signal.id, { deliveredAt: clock.now(), result });
  };

  const pickUpSignals = async (): Promise<void> => {
    // Finishing jobs too: a kill requested just as the leader exited still reaches a grandchild left in the group.
    const jobs = [...running.values()].filter((job) => !job.lost);
    if (jobs.length === 0) return;
    const signals = await queueRepo.pendingSignals(jobs.map((job) => job.execution.id));
    for (const signal of signals) {
      const job = running.get(signal.executionId);
      // A signal for a later attempt is not ours to answer; one being delivered is not delivered twice.
      if (job === undefined || signal.attempt > job.attempt || job.signalsInFlight.has(signal.id)) continue;
      job.signalsInFlight.add(signal.id);
      const delivery = deliver(job, signal)
        .catch((error: unknown) => {
          // Left undelivered: the next heartbeat tries again (a group already gone is reported as such).
          job.signalsInFlight.delete(signal.id);
          logger.error(`could not record delivery of signal ${signal.id}`, { error: errorMessage(error) });
        })
        .finally(() => deliveries.delete(delivery));
      deliveries.add(delivery);
    }
  };

  // ---- loops --------------------------------------------------------------------------------------------------

  /**
   * Puts back in the queue the executions claimed under this agent's worker ids that it never launched (see
   * claimInDoubtUntil). Runs between claims, so every claim whose answer arrived is already in `running`; an
   * execution that was launched but whose start and finish were never recorded is left alone (it ran).
   */
  const releaseLostClaims = async (): Promise<void> => {
    const claimed = await queueRepo.claimedWithoutStart(ownWorkerIds);
    const lost = claimed.filter((hold) => !running.has(hold.id) && !unsettled.has(hold.id));
    if (lost.length === 0) return;
    const released = await queueRepo.releaseClaims(ownWorkerIds, lost);
    logger.warn(`released ${released} execution(s) claimed by a claim whose answer was lost`, {
      executions: lost.map((hold) => hold.id),
    });
  };

  const checkLostClaims = async (): Promise<void> => {
    if (claimInDoubtUntil === undefined) return;
    const checkedAt = performance.now();
    await releaseLostClaims();
    // A commit may land after its call failed (a Data API call that timed out): keep looking for a lease's length.
    if (claimInDoubtUntil !== undefined && checkedAt >= claimInDoubtUntil) claimInDoubtUntil = undefined;
  };

  const claimOnce = async (): Promise<void> => {
    const free = slots - running.size;
    if (free <= 0 || suspended || stopping || workerId === undefined) return;
    const claimedAt = performance.now();
    const claimed = await queueRepo.claim({ workerId, hostname, queues, limit: free, leaseMs, now: clock.now() });
    // stop() may have begun during the claim; what was claimed is still run and recorded (drain covers it).
    for (const execution of claimed) launch(execution, claimedAt + leaseMs);
  };

  /** Whether an idle worker may leave; when it may not, its idle period starts again. */
  const idleExitAllowed = async (): Promise<boolean> => {
    if (options.mayStopIdle === undefined || workerId === undefined) return true;
    let allowed = false;
    try {
      allowed = await options.mayStopIdle(workerId);
    } catch (error) {
      logger.warn('could not tell whether this idle worker may leave; staying', { error: errorMessage(error) });
    }
    if (!allowed) lastBusyAt = performance.now();
    return allowed && running.size === 0;
  };

  const runClaimLoop = async (): Promise<void> => {
    let failures = 0;
    while (!stopping) {
      try {
        await checkLostClaims();
        await claimOnce();
        failures = 0;
      } catch (error) {
        failures++;
        claimInDoubtUntil = performance.now() + leaseMs;
        logger.error('claim failed; retrying', { error: errorMessage(error), failures });
      }
      if (
        options.idleTimeoutMs !== undefined &&
        running.size === 0 &&
        performance.now() - lastBusyAt >= options.idleTimeoutMs &&
        !stopping &&
        (await idleExitAllowed())
      ) {
        logger.info(`idle for ${options.idleTimeoutMs} ms; stopping`);
        void stop('idle timeout');
        break;
      }
      if (stopping) break;
      await claimWaker.sleep(failures > 0 ? backoffMs(failures, pollIntervalMs) : pollIntervalMs);
    }
  };

  const heartbeatOnce = async (): Promise<void> => {
    if (workerId === undefined) return;
    const pids: Record<number, number> = {};
    const holds: ExecutionHold[] = [];
    for (const job of running.values()) {
      // A finishing job is still listed and leased until its finish is written (the monitor's contract): a
      // finish that takes retries must not look like a vanished process, nor let another worker reclaim it.
      if (job.lost) continue;
      holds.push({ id: job.execution.id, attempt: job.attempt });
      if (job.command?.pid !== undefined) pids[job.execution.id] = job.command.pid;
    }
    await syncClock();
    const now = clock.now();
    const renewedAt = performance.now();
    let flags = await workerRepo.heartbeat(workerId, { now, pids, draining: stopping });
    if (flags === undefined) {
      // Our row was removed (judged lost while we were cut off): carry on as a new worker.
      const previous = workerId;
      workerId = await workerRepo.register({ hostname, queues, slots, now });
      ownWorkerIds.push(workerId);
      logger.warn(`worker ${previous} was removed; registered again as worker ${workerId}`);
      flags = { suspended: false, draining: false };
    }
    if (flags.suspended !== suspended) logger.info(flags.suspended ? 'worker suspended: claiming nothing new' : 'worker resumed');
    suspended = flags.suspended;
    if (flags.draining && !stopping) {
      logger.info('worker asked to drain; stopping');
      void stop('drain requested');
    }
    const still = await queueRepo.renewLeases(workerId, holds, new Date(now.getTime() + leaseMs));
    const current = new Set(still.map((hold) => hold.id));
    for (const hold of holds) {
      const job = running.get(hold.id);
      // A job that finished meanwhile dropped out of the renewal by its own finish, not by losing its lease.
      if (job !== undefined && !job.finishing && !current.has(hold.id)) leaseLost(job, 'lease renewal');
      else if (job !== undefined) job.leaseUntil = renewedAt + leaseMs;
    }
    await pickUpSignals();
  };

  /**
   * Kills the process groups this host still runs for commands that were finished as lost. Only members carrying
   * the lost command's instance id and started before the loss are taken for it (isLeftoverOf), so a group
   * that reused the pid, such as the retry, is left alone.
   */
  const killLeftovers = async (): Promise<void> => {
    const now = clock.now();
    const lost = await queueRepo.lostCommands(hostname, new Date(now.getTime() - LEFTOVER_WINDOW_MS));
    for (const command of lost) {
      if (!isLeftoverOf(command.pid, command.instanceId, command.lostAt)) continue;
      const outcome = await killProcessGroup(command.pid, killGraceMs);
      logger.warn(`killed what was left of lost execution ${command.executionId}: ${describeKill(command.pid, killGraceMs, outcome)}`, {
        executionId: command.executionId,
        instanceId: command.instanceId,
      });
    }
  };

  /**
   * Records the finishes of this host's commands that ended while their agent was dead: unfinished, run by another
   * worker of this host, the process group gone, and the exit status in the status file. Fenced on the attempt, so
   * a finish by the monitor (worker lost) or by a live agent wins. Status files of finished executions are removed.
   */
  const recoverFinishedCommands = async (): Promise<void> => {
    const dir = options.statusDir;
    if (dir === undefined) return;
    const names = await readdir(dir).catch(() => [] as string[]);
    const files = names.flatMap((name) => {
      const match = STATUS_FILE.exec(name);
      return match ? [{ id: Number(match[1]), attempt: Number(match[2]), path: join(dir, name) }] : [];
    });
    if (files.length === 0) return;
    const rows = new Map((await queueRepo.executionsById(files.map((f) => f.id))).map((e) => [e.id, e]));
    for (const file of files) {
      const execution = rows.get(file.id);
      if (execution === undefined || execution.finishedAt !== null || execution.attempt !== file.attempt) {
        await unlink(file.path).catch(() => undefined);
        continue;
      }
      const { pid, workerId } = execution;
      if (execution.hostname !== hostname || pid === null || running.has(file.id)) continue;
      if ((workerId !== null && ownWorkerIds.includes(workerId)) || isProcessGroupAlive(pid)) continue;
      const info = await stat(file.path).catch(() => undefined);
      const status = /^(\d{1,3})\n$/.exec(await readFile(file.path, 'utf8').catch(() => ''));
      if (info === undefined || status === null || Date.now() - info.mtimeMs < STATUS_SETTLE_MS) continue;
      try {
        await queueRepo.finish(file.id, file.attempt, {
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
      try {
        options.onExecutionFinished?.(file.id);
      } catch (error) {
        logger.error('onExecutionFinished threw', { error: errorMessage(error) });
      }
    }
  };

  const runHeartbeatLoop = async (): Promise<void> => {
    let failures = 0;
    while (!stopped) {
      await heartbeatWaker.sleep(failures > 0 ? Math.min(backoffMs(failures, heartbeatIntervalMs), heartbeatIntervalMs) : heartbeatIntervalMs);
      if (stopped) break;
      try {
        await heartbeatOnce();
        failures = 0;
      } catch (error) {
        failures++;
        logger.error('heartbeat failed; retrying', { error: errorMessage(error), failures });
      }
      // Beside the heartbeat, not in its way: a kill waits out its grace period.
      if (leftoverCheckMs > 0 && !stopping && leftoverCheck === undefined && performance.now() - lastLeftoverCheckAt >= leftoverCheckMs) {
        lastLeftoverCheckAt = performance.now();
        leftoverCheck = Promise.all([
          killLeftovers(),
          recoverFinishedCommands().catch((error: unknown) =>
            logger.error('could not record the finishes of commands whose agent died', { error: errorMessage(error) }),
          ),
        ])
          .then(() => undefined)
          .catch((error: unknown) => logger.error('could not look for leftovers of lost commands', { error: errorMessage(error) }))
          .finally(() => (leftoverCheck = undefined));
      }
    }
  };

  /**
   * A command whose lease could not be renewed for a whole lease (the database unreachable from here) is killed by
   * its own agent: once the monitor judges the worker lost (a threshold longer than the lease and the kill grace) and
   * someone retries, the retry must not run beside it. Its finish is not written; the monitor finishes it as lost.
   */
  const expireLeases = (): void => {
    const now = performance.now();
    for (const job of running.values()) {
      if (!job.lost && !job.finishing && now >= job.leaseUntil) leaseLost(job, `its lease of ${leaseMs} ms ran out unrenewed`);
    }
  };

  const sampleMemory = (): void => {
    const now = performance.now();
    for (const job of running.values()) {
      const pgid = job.command?.pgid;
      if (pgid === undefined || job.finishing || job.lost || now < job.nextSampleAt) continue;
      job.samples++;
      job.nextSampleAt = now + memorySchedule(job.samples);
      const rssKb = sampleProcessGroupRss(pgid);
      if (rssKb === undefined) continue;
      const { execution } = job;
      queueRepo
        .recordMemorySample({
          executionId: execution.id,
          instanceId: execution.instanceId,
          definitionId: execution.definitionId,
          rssKb,
          sampledAt: clock.now(),
        })
        .catch((error: unknown) => logger.error('could not record a memory sample', { error: errorMessage(error) }));
    }
  };

  // ---- start and stop -----------------------------------------------------------------------------------------

  /** Waits until nothing runs, or until timeoutMs passed (false); undefined waits as long as it takes. */
  const waitForJobs = async (timeoutMs?: number): Promise<boolean> => {
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    while (running.size > 0) {
      const allEnded = Promise.all([...running.values()].map((job) => job.ended));
      if (deadline === undefined) {
        await allEnded;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([allEnded, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    return true;
  };

  const drain = async (reason: string): Promise<void> => {
    stopping = true;
    // A registration in flight ends first, so its row is deregistered below and no loop starts after this.
    await registering.catch(() => undefined);
    claimWaker.wake();
    await claimLoop;
    // A claim whose answer was lost just before the stop: released now, or its rows would outlive this worker.
    const claimsSettled = await checkLostClaims().then(
      () => true,
      (error: unknown) => {
        logger.error('could not look for claims whose answer was lost', { error: errorMessage(error) });
        return false;
      },
    );
    logger.info(`stopping (${reason}): claims are over; waiting up to ${drainGraceMs} ms for ${running.size} command(s)`);
    // Tell the database at once that this worker drains, rather than at the next heartbeat.
    heartbeatWaker.wake();
    if (!(await waitForJobs(drainGraceMs))) {
      logger.warn(`drain grace of ${drainGraceMs} ms is over; killing ${running.size} command(s)`);
      for (const job of running.values()) if (!job.finishing) void job.command?.kill(killGraceMs);
      await waitForJobs();
    }
    stopped = true;
    heartbeatWaker.wake();
    await heartbeatLoop;
    await Promise.all([...deliveries, leftoverCheck]);
    if (memoryTimer !== undefined) clearInterval(memoryTimer);
    if (workerId !== undefined) {
      if (unrecordedFinishes > 0) {
        logger.error(`${unrecordedFinishes} finish(es) could not be recorded; leaving worker ${workerId} for the monitor`);
      } else if (!claimsSettled) {
        // Its stale row makes the monitor finish what the lost claim holds (worker lost), so retry and skip apply.
        logger.error(`claims whose answer was lost may remain; leaving worker ${workerId} for the monitor`);
      } else {
        await retrying(START_WRITE_ATTEMPTS, FINISH_RETRY_MS, () => workerRepo.deregister(workerId as number)).catch((error: unknown) =>
          logger.error(`could not deregister worker ${workerId}`, { error: errorMessage(error) }),
        );
      }
    }
    logger.info('stopped');
  };

  const stop = (reason = 'stop requested'): Promise<void> => {
    stopPromise ??= drain(reason).finally(resolveDone);
    return done;
  };

  const start = async (): Promise<void> => {
    if (started || stopping) throw new Error('the agent was already started or stopped');
    started = true;
    registering = (async () => {
      // The shells write their exit status there: it must exist before the first command does.
      if (options.statusDir !== undefined) await mkdir(options.statusDir, { recursive: true });
      await syncClock();
      workerId = await workerRepo.register({ hostname, queues, slots, now: clock.now() });
      ownWorkerIds.push(workerId);
      lastBusyAt = performance.now();
      logger.info(`worker ${workerId} on ${hostname} serves ${queues.join(', ')} with ${slots} slot(s)`);
      if (stopping) return;
      claimLoop = runClaimLoop();
      heartbeatLoop = runHeartbeatLoop();
      memoryTimer = setInterval(() => {
        expireLeases();
        sampleMemory();
      }, Math.min(MEMORY_TICK_MS, Math.max(1, memorySchedule(0))));
    })();
    await registering;
  };

  return {
    get workerId() {
      return workerId;
    },
    start,
    stop,
    done,
    nudge: () => claimWaker.wake(),
  };
}
