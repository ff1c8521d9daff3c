/**
 * What a worker agent is told (AgentOptions), its defaults, and the resolved settings its parts share.
 */
import { hostname as osHostname } from 'node:os';
import { errorMessage } from '../core/errors';
import { DEFAULT_QUEUE } from '../core/model';
import type { Doorbell } from '../core/doorbell';
import type { Clock, IdGenerator } from '../core/ports';
import type { DatabaseHandle } from '../db/connection';
import type { LogSink } from '../adapters/logs/file-log-sink';
import { sampleIntervalMs } from './memory-sampler';
import { DEFAULT_SHELL_PATH, startCommand, type CommandStarter, type InheritedEnv } from './process-runner';
import type { RunAsUser } from './run-as';
import { silentLogger, type Logger } from '../core/ports';

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
/** Head and tail reach the database at most this often per execution (the whole output streams to the log sink). */
export const DEFAULT_OUTPUT_FLUSH_MS = 1_000;

export type AgentLogger = Logger;

/** Drops every message (tests, embedded use). */
export const silentAgentLogger: AgentLogger = silentLogger;

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
  /**
   * Adaptive polling (core/poll-pace.ts): while a command runs or ran within the last two seconds, look for work
   * this often (one indexed read) instead of every pollIntervalMs, then slow down to pollIntervalMs. For a separate
   * agent on MariaDB, which nothing else wakes; undefined or 0 keeps the fixed poll (the Data API bills every read).
   */
  hotPollMs?: number;
  /** Woken when it rings (on AWS, the SQS queue the processor rings); pollIntervalMs stays the fallback. */
  doorbell?: Doorbell;
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
  /**
   * How commands are started: process-runner's startCommand on the agent's thread by default; `kuroko dev` passes
   * agent/command-thread.ts's, which spawns from a worker thread so the passes and the API sharing the thread do
   * not wait on each fork.
   */
  startCommand?: CommandStarter;
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

/** The options with their defaults filled in, as the agent's parts read them. */
export interface AgentSettings {
  readonly clock: Clock;
  readonly hostname: string;
  readonly queues: string[];
  readonly slots: number;
  readonly pollIntervalMs: number;
  readonly hotPollMs: number;
  /** A doorbell wakes the claim loop: after the hot window it waits pollIntervalMs at once (no ramp down). */
  readonly doorbell: boolean;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly killGraceMs: number;
  readonly idleTimeoutMs: number | undefined;
  readonly mayStopIdle: ((workerId: number) => Promise<boolean>) | undefined;
  readonly drainGraceMs: number;
  readonly outputFlushMs: number;
  readonly memorySchedule: (sampleCount: number) => number;
  readonly logSink: LogSink;
  readonly shellPath: string;
  readonly startCommand: CommandStarter;
  readonly inheritEnv: InheritedEnv;
  readonly runAs: RunAsUser | undefined;
  readonly onExecutionFinished: ((executionId: number) => void) | undefined;
  readonly leftoverCheckMs: number;
  readonly logger: AgentLogger;
  readonly statusDir: string | undefined;
}

export function resolveAgentSettings(options: AgentOptions): AgentSettings {
  const slots = options.slots ?? DEFAULT_AGENT_SLOTS;
  if (!Number.isSafeInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
  return {
    clock: options.clock ?? { now: () => new Date() },
    hostname: options.hostname ?? osHostname(),
    queues: options.queues && options.queues.length > 0 ? [...options.queues] : [DEFAULT_QUEUE],
    slots,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    hotPollMs: options.hotPollMs ?? 0,
    doorbell: options.doorbell !== undefined,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
    idleTimeoutMs: options.idleTimeoutMs,
    mayStopIdle: options.mayStopIdle,
    drainGraceMs: options.drainGraceMs ?? DEFAULT_DRAIN_GRACE_MS,
    outputFlushMs: options.outputFlushMs ?? DEFAULT_OUTPUT_FLUSH_MS,
    memorySchedule: options.memorySchedule ?? sampleIntervalMs,
    logSink: options.logSink,
    shellPath: options.shellPath ?? DEFAULT_SHELL_PATH,
    startCommand: options.startCommand ?? startCommand,
    inheritEnv: options.inheritEnv ?? {},
    runAs: options.runAs,
    onExecutionFinished: options.onExecutionFinished,
    leftoverCheckMs: options.leftoverCheckMs ?? DEFAULT_LEFTOVER_CHECK_MS,
    logger: options.logger ?? silentAgentLogger,
    statusDir: options.statusDir,
  };
}

/** Calls onExecutionFinished, which must not take the agent down with it. */
export function reportFinished(settings: AgentSettings, executionId: number): void {
  try {
    settings.onExecutionFinished?.(executionId);
  } catch (error) {
    settings.logger.error('onExecutionFinished threw', { error: errorMessage(error) });
  }
}

/** What the agent's loops read of its lifecycle, and how they ask it to stop (idle, drain requested). */
export interface AgentControl {
  /** A stop began: nothing new is claimed, the worker row says draining. */
  readonly stopping: boolean;
  stop(reason: string): void;
}
