/**
 * The monitor's settings, alert kinds and ports (the pass itself is monitor-service.ts). The settings arrive typed:
 * the deployment's variables are read by app/config, never here.
 */
import { EVENT_TYPE, type EventRecord, type Execution, type Instance, type LogEntry } from '../model';
import type { Clock, IdGenerator } from '../ports';

export const SECOND_MS = 1_000;
const DAY_MS = 24 * 60 * 60 * SECOND_MS;
export const KB_PER_MB = 1_024;

/** The monitor's alert kinds (each is also the type of the events it raises). */
export const ALERT_KIND = {
  notAssigned: EVENT_TYPE.notAssigned,
  processAbsence: EVENT_TYPE.processAbsence,
  workerLost: EVENT_TYPE.workerLost,
  remindFailure: EVENT_TYPE.remindFailure,
  memoryExceeded: EVENT_TYPE.memoryExceeded,
} as const;
export type AlertKind = (typeof ALERT_KIND)[keyof typeof ALERT_KIND];

/** Not an alert: the first time a pass saw an execution missing from its worker's heartbeat. */
export const ABSENCE_OBSERVATION_KIND = 'process_absence_seen';

export interface MonitorSettings {
  /** An execution nobody claimed for this long is not_assigned. */
  assignmentDelayMs: number;
  /** A claimed execution with no pid for this long is not_assigned. */
  noPidMs: number;
  /** How long an execution must stay missing from its worker's heartbeat before it is lost. */
  processAbsenceMs: number;
  /** A worker whose heartbeat is older than this is lost. */
  workerLostMs: number;
  /** An instance in error this long is reminded about, and again after each further period. */
  remindFailureAfterMs: number;
  /** Peak RSS above the definition's history times this factor ... */
  memoryFactor: number;
  /** ... and at least this much above it, raises memory_exceeded. */
  memoryMinExcessKb: number;
  /** Instances with memory samples this recent are checked. */
  memoryLookbackMs: number;
}

export const DEFAULT_MONITOR_SETTINGS: MonitorSettings = {
  assignmentDelayMs: 300 * SECOND_MS,
  noPidMs: 60 * SECOND_MS,
  processAbsenceMs: 30 * SECOND_MS,
  workerLostMs: 120 * SECOND_MS,
  remindFailureAfterMs: DAY_MS,
  memoryFactor: 2,
  memoryMinExcessKb: 100 * KB_PER_MB,
  memoryLookbackMs: 60 * 60 * SECOND_MS,
};

/** A worker as its last heartbeat left it. */
export interface WorkerState {
  id: number;
  hostname: string;
  heartbeatAt: Date;
  startedAt: Date;
  draining: boolean;
  /** Execution ids the worker listed in its last heartbeat; undefined when the column could not be read. */
  listedExecutionIds: ReadonlySet<number> | undefined;
}

/** An execution to finish as lost, with what announces it if the fenced write succeeds. */
export interface ExecutionLoss {
  executionId: number;
  attempt: number;
  reason: string;
  logs: LogEntry[];
  events: EventRecord[];
}

/** Everything one alert writes, atomically. */
export interface AlertPlan {
  kind: AlertKind;
  subject: string;
  raisedAt: Date;
  logs: LogEntry[];
  events: EventRecord[];
  losses: ExecutionLoss[];
  /** With losses: written instead of theirs when none could be written (the agent finished them all first). */
  fallbackEvents: EventRecord[];
  /** With losses: raise nothing when none could be written (the process had not vanished after all). */
  requireLoss: boolean;
}

/** Peak RSS of one instance. */
export interface MemoryPeak {
  instanceId: number;
  definitionId: number;
  maxRssKb: number;
}

/** The monitor's view of the store. */
export interface MonitorStore {
  findWorkers(): Promise<WorkerState[]>;
  /** Unfinished executions held by these workers. */
  findUnfinishedExecutionsOfWorkers(workerIds: readonly number[]): Promise<Execution[]>;
  /** Unfinished executions that have a pid and a worker. */
  findRunningExecutions(): Promise<Execution[]>;
  /** Unfinished executions nobody claimed, created at or before `createdBefore`. */
  findUnclaimedExecutions(createdBefore: Date): Promise<Execution[]>;
  /** Unfinished executions claimed at or before `claimedBefore` that still have no pid. */
  findClaimedWithoutPid(claimedBefore: Date): Promise<Execution[]>;
  /** Working instances whose error_at is at or before `errorBefore`. */
  findInstancesInErrorSince(errorBefore: Date): Promise<Instance[]>;
  /** Peak RSS of instances sampled since `since`. */
  findRecentMemoryPeaks(since: Date): Promise<MemoryPeak[]>;
  /** Peak RSS of every instance of these definitions. */
  findMemoryPeaksOfDefinitions(definitionIds: readonly number[]): Promise<MemoryPeak[]>;
  /** The subjects (of those given) already raised with this kind. */
  findRaisedSubjects(kind: string, subjects: readonly string[]): Promise<Set<string>>;
  /** Absence observations: subject -> when first seen. */
  findAbsenceObservations(): Promise<Map<string, Date>>;
  recordAbsenceObservation(subject: string, at: Date): Promise<void>;
  clearAbsenceObservations(subjects: readonly string[]): Promise<void>;
  /**
   * Writes the alert, its losses, logs and events in one transaction. `raised` is false when the subject was
   * already raised (or `requireLoss` and no loss could be written); `lost` counts the executions finished.
   */
  raiseAlert(plan: AlertPlan): Promise<{ raised: boolean; lost: number }>;
}

export interface MonitorDeps {
  store: MonitorStore;
  clock: Clock;
  ids: IdGenerator;
  settings?: Partial<MonitorSettings>;
}

export interface MonitorPassResult {
  raised: Record<AlertKind, number>;
  /** Executions finished as lost. */
  lostExecutions: number;
}

