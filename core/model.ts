/** Domain records shared by the engine, the repositories, the agent and the API. */

export const TOKEN_STATUS = {
  working: 'working',
  finished: 'finished',
  failure: 'failure',
  waiting: 'waiting',
  critical: 'critical',
} as const;
export type TokenStatus = (typeof TOKEN_STATUS)[keyof typeof TOKEN_STATUS];

/** Statuses the processor steps. */
export const PROCESSABLE_TOKEN_STATUSES: readonly TokenStatus[] = [TOKEN_STATUS.working, TOKEN_STATUS.waiting];

export const INSTANCE_STATUS = {
  working: 'working',
  success: 'success',
  canceled: 'canceled',
  error: 'error',
} as const;
export type InstanceStatus = (typeof INSTANCE_STATUS)[keyof typeof INSTANCE_STATUS];

export const DEFAULT_QUEUE = '@default';

/** Bookkeeping of one `retry:` child: retries used, allowed, and the sleep before each. */
export interface RetryState {
  retried_count: number;
  count: number;
  sleep_time: number;
}

export const WAIT_PERIODS = ['hourly', 'daily', 'weekly', 'monthly'] as const;
export type WaitPeriod = (typeof WAIT_PERIODS)[number];

/** One upstream job of a `wait:` and the window an instance of it must be created in. */
export interface WaitJob {
  job_definition_id: number;
  period: WaitPeriod;
  /** Window start and end, epoch milliseconds. */
  start_from: number;
  start_to: number;
  received: boolean;
}

export interface WaitState {
  jobs: WaitJob[];
  /** Minutes. */
  timeout: number;
  /** Epoch milliseconds when the wait began (D11). */
  started_at: number;
}

export interface TokenMeta {
  launched_time: string;
  job_definition_id: number;
  job_definition_name: string;
  job_instance_id: number;
}

/** The context a token carries from node to node (Kuroko2's keys, kept for compatibility). */
export interface TokenContext {
  meta: TokenMeta;
  ENV?: Record<string, string>;
  QUEUE?: string;
  TIMEOUT?: number;
  EXPECTED_TIME?: number;
  /** Epoch milliseconds of the last long-elapsed-time announcement. */
  EXPECTED_TIME_NOTIFIED_AT?: number;
  AUTO_SKIP_ERROR?: boolean;
  /** Epoch seconds until which the token does not run its node. */
  SLEEP?: number;
  RETRY?: Record<string, RetryState>;
  WAIT?: WaitState;
  sub_process_id?: number;
  fork_children_ids?: Record<string, number[]>;
  RAILS_ENV?: string;
  /** Copies of this token one launch may run at once (parallel_fork sizes and sub_process fan-outs multiplied); 1 when absent. */
  FAN_OUT?: number;
  /** How many sub_process launches led to this instance; 0 when absent. */
  SUB_PROCESS_DEPTH?: number;
}

export interface Token {
  id: number;
  uuid: string;
  instanceId: number;
  definitionId: number;
  parentId: number | null;
  script: string;
  path: string;
  status: TokenStatus;
  message: string;
  context: TokenContext;
  /** Optimistic concurrency: every write checks and bumps it. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface Instance {
  id: number;
  definitionId: number;
  script: string;
  launchedBy: string;
  retrying: boolean;
  createdAt: Date;
  finishedAt: Date | null;
  canceledAt: Date | null;
  errorAt: Date | null;
}

/** Kuroko2's derived status: success, else canceled, else error, else working. */
export function instanceStatus(instance: Pick<Instance, 'finishedAt' | 'canceledAt' | 'errorAt'>): InstanceStatus {
  if (instance.finishedAt) return INSTANCE_STATUS.success;
  if (instance.canceledAt) return INSTANCE_STATUS.canceled;
  if (instance.errorAt) return INSTANCE_STATUS.error;
  return INSTANCE_STATUS.working;
}

export const PREVENT_MULTI = { none: 0, workingOrError: 1, working: 2, error: 3 } as const;
export type PreventMulti = (typeof PREVENT_MULTI)[keyof typeof PREVENT_MULTI];

export interface Definition {
  id: number;
  name: string;
  description: string;
  script: string;
  timeZone: string;
  suspended: boolean;
  preventMulti: PreventMulti;
  notifyCancellation: boolean;
  /** Kuroko2's `hipchat_notify_finished`: "notify all events" to chat and webhook channels. */
  notifyAll: boolean;
  apiAllowed: boolean;
  slackChannel: string;
  webhookUrl: string | null;
  /** Minutes within which a missed cron slot may still launch after downtime (D9). */
  catchUpWindowMinutes: number;
  /** Days its finished and canceled instances are kept; null or absent follows the global policy, 0 forever. */
  retentionDays?: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A command waiting for, or held by, an agent. */
export interface Execution {
  id: number;
  uuid: string;
  tokenId: number;
  instanceId: number;
  definitionId: number;
  queue: string;
  shell: string;
  /** Environment for the command: the token's ENV plus the KUROKO2_* variables. */
  env: Record<string, string>;
  createdAt: Date;
  /** Claim count; every agent write is fenced on it. 0 until first claimed. */
  attempt: number;
  workerId: number | null;
  hostname: string | null;
  leaseExpiresAt: Date | null;
  claimedAt: Date | null;
  pid: number | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  exitStatus: number | null;
  termSignal: string | null;
  outputHead: string;
  outputTail: string;
  /** Set once when a kill was requested (timeout, cancel, terminate). */
  killRequestedAt: Date | null;
  /** Why the execution ended without a normal exit (lost process, lost worker, spawn failure). */
  lostReason: string | null;
}

export const LOG_LEVEL = { info: 'INFO', warn: 'WARN', error: 'ERROR' } as const;
export type LogLevel = (typeof LOG_LEVEL)[keyof typeof LOG_LEVEL];

export interface LogEntry {
  instanceId: number;
  level: LogLevel;
  message: string;
  createdAt: Date;
}

export const EVENT_TYPE = {
  launch: 'launch',
  retrying: 'retrying',
  skipping: 'skipping',
  cancellation: 'cancellation',
  failure: 'failure',
  critical: 'critical',
  finished: 'finished',
  backToNormal: 'back_to_normal',
  longElapsedTime: 'long_elapsed_time',
  notAssigned: 'not_assigned',
  processAbsence: 'process_absence',
  workerLost: 'worker_lost',
  missedSlot: 'missed_slot',
  remindFailure: 'remind_failure',
  memoryExceeded: 'memory_exceeded',
} as const;
export type EventType = (typeof EVENT_TYPE)[keyof typeof EVENT_TYPE];

/** An event written to the outbox in the same transaction as the change it announces. */
export interface EventRecord {
  id: number;
  type: EventType;
  instanceId: number | null;
  definitionId: number | null;
  tokenId: number | null;
  /** The instance log line that explains the event, if any (notification bodies use it). */
  message: string;
  createdAt: Date;
}
