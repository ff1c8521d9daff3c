/**
 * The Kysely view of the database: one `XxxTable` per table, snake_case columns. Every id is a BIGINT handed out
 * by the hi/lo id generator (`db/id-generator.ts`), never AUTO_INCREMENT, so ids are unique across all tables and
 * known before the row is written.
 *
 * Value shapes differ per driver, so column types say what each side may see:
 * - times are DATETIME(3) UTC on MySQL and 'YYYY-MM-DD HH:MM:SS.fff' text on SQLite; written as `Date`, read back
 *   as a string (SQLite, mysql2 with `dateStrings`, the Data API) or a `Date`: map them with `fromDbTime`.
 * - booleans are TINYINT(1) / INTEGER; written as `boolean`, read as 0/1 or a boolean (Data API): `fromDbBool`.
 * - JSON is stored as text and parsed with zod on read (`parseJsonColumn`).
 */
import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';
import type { EventType, LogLevel, PreventMulti, TokenStatus } from '../core/model';

/** A DATETIME(3) UTC column: written as a `Date`, read as a string or a `Date` depending on the driver. */
export type DbTime = ColumnType<Date | string, Date, Date>;
/** A nullable time column. */
export type NullableDbTime = ColumnType<Date | string | null, Date | null, Date | null>;
/** A TINYINT(1) / INTEGER flag: written as a boolean, read as 0/1 or a boolean. */
export type DbBool = ColumnType<boolean | number, boolean, boolean>;

/** What became of one cron slot of a definition (the launch key of invariant 2). */
export const SCHEDULE_SLOT_OUTCOME = { launched: 'launched', missed: 'missed', skipped: 'skipped' } as const;
export type ScheduleSlotOutcome = (typeof SCHEDULE_SLOT_OUTCOME)[keyof typeof SCHEDULE_SLOT_OUTCOME];

/**
 * Delivery state of one event on one notification channel. `skipped`: the gating rules exclude the pair; it is
 * recorded once so the event leaves the notifier's backlog.
 */
export const EVENT_DELIVERY_STATUS = { pending: 'pending', delivered: 'delivered', failed: 'failed', skipped: 'skipped' } as const;
export type EventDeliveryStatus = (typeof EVENT_DELIVERY_STATUS)[keyof typeof EVENT_DELIVERY_STATUS];

export interface JobDefinitionTable {
  id: number;
  name: string;
  description: string;
  script: string;
  time_zone: string;
  suspended: DbBool;
  prevent_multi: PreventMulti;
  notify_cancellation: DbBool;
  notify_all: DbBool;
  api_allowed: DbBool;
  slack_channel: string;
  webhook_url: string | null;
  catch_up_window_minutes: number;
  /** Days finished and canceled instances are kept; null follows the global policy, 0 keeps them forever (0008). */
  retention_days: ColumnType<number | null, number | null | undefined, number | null>;
  /** Optimistic concurrency for edits from the console and the API. */
  version: number;
  created_at: DbTime;
  updated_at: DbTime;
}

export interface TagTable {
  id: number;
  name: string;
  created_at: DbTime;
}

export interface JobDefinitionTagTable {
  job_definition_id: number;
  tag_id: number;
}

export interface ScriptRevisionTable {
  id: number;
  job_definition_id: number;
  script: string;
  changed_by: string;
  changed_at: DbTime;
}

export interface JobScheduleTable {
  id: number;
  job_definition_id: number;
  cron: string;
  created_at: DbTime;
  /** The schedule's next slot as the scheduler last computed it; NULL until then (migration 0009). */
  next_fire_at: ColumnType<Date | string | null, Date | null | undefined, Date | null>;
}

export interface JobSuspendScheduleTable {
  id: number;
  job_definition_id: number;
  cron: string;
  created_at: DbTime;
}

export interface JobInstanceTable {
  id: number;
  job_definition_id: number;
  script: string;
  launched_by: string;
  retrying: DbBool;
  /** JSON object of extra environment variables given at launch. */
  env: string;
  /** Set by API callers that retry a launch; unique per definition (NULLs never collide). */
  idempotency_key: string | null;
  /** SHA-256 of the env and script the key was first used with (null before migration 0003, or without a key). */
  idempotency_fingerprint: string | null;
  created_at: DbTime;
  finished_at: NullableDbTime;
  canceled_at: NullableDbTime;
  error_at: NullableDbTime;
}

export interface TokenTable {
  id: number;
  uuid: string;
  job_instance_id: number;
  job_definition_id: number;
  parent_id: number | null;
  script: string;
  path: string;
  status: TokenStatus;
  message: string;
  /** JSON of `TokenContext`. */
  context: string;
  version: number;
  created_at: DbTime;
  updated_at: DbTime;
  /** When the next step is due (the epoch: at once); see migration 0009. */
  wake_at: ColumnType<Date | string, Date | undefined, Date>;
  /** The sub process instance the token waits for, if any. */
  waits_on_instance_id: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface ExecutionTable {
  id: number;
  uuid: string;
  token_id: number;
  job_instance_id: number;
  job_definition_id: number;
  queue: string;
  shell: string;
  /** JSON object of the command's environment. */
  env: string;
  created_at: DbTime;
  /** Claim count; agent writes are fenced on it. */
  attempt: ColumnType<number, number | undefined, number>;
  worker_id: number | null;
  hostname: string | null;
  lease_expires_at: NullableDbTime;
  claimed_at: NullableDbTime;
  pid: number | null;
  started_at: NullableDbTime;
  finished_at: NullableDbTime;
  exit_status: number | null;
  term_signal: string | null;
  output_head: string;
  output_tail: string;
  kill_requested_at: NullableDbTime;
  lost_reason: string | null;
}

export interface ExecutionHistoryTable {
  id: number;
  execution_id: number;
  job_instance_id: number;
  job_definition_id: number;
  token_id: number;
  queue: string;
  shell: string;
  hostname: string | null;
  worker_id: number | null;
  pid: number | null;
  started_at: NullableDbTime;
  finished_at: DbTime;
  exit_status: number | null;
  term_signal: string | null;
}

export interface WorkerTable {
  id: number;
  hostname: string;
  /** JSON array of queue names. */
  queues: string;
  slots: number;
  /** JSON object: execution id -> pid of each live process the worker holds. */
  pids: string;
  heartbeat_at: DbTime;
  started_at: DbTime;
  suspended: DbBool;
  /** Set when the worker was asked to stop: it claims nothing new and exits once idle. */
  draining: DbBool;
  version: number;
}

export interface ProcessSignalTable {
  id: number;
  execution_id: number;
  /** The execution attempt the signal is meant for; a later attempt ignores it. */
  attempt: number;
  signal: string;
  reason: string;
  requested_at: DbTime;
  delivered_at: NullableDbTime;
  /** What the agent reports after delivery (killed, already gone, ...). */
  result: string | null;
}

export interface InstanceLogTable {
  id: number;
  job_instance_id: number;
  level: LogLevel;
  message: string;
  created_at: DbTime;
}

export interface EventTable {
  id: number;
  type: EventType;
  job_instance_id: number | null;
  job_definition_id: number | null;
  token_id: number | null;
  message: string;
  created_at: DbTime;
  /** 1 once every channel has a delivery row for the event (migration 0009); the notifier reads the 0s. */
  notified: ColumnType<number, number | undefined, number>;
}

export interface EventDeliveryTable {
  id: number;
  event_id: number;
  channel: string;
  status: EventDeliveryStatus;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: DbTime;
  delivered_at: NullableDbTime;
  last_error: string | null;
}

export interface ScheduleSlotTable {
  id: number;
  job_definition_id: number;
  scheduled_at: DbTime;
  cron: string;
  outcome: ScheduleSlotOutcome;
  job_instance_id: number | null;
  created_at: DbTime;
}

export interface SchedulerStateTable {
  name: string;
  last_pass_at: DbTime;
  updated_at: DbTime;
}

/** A pass run by a single runner per deployment (migration 0010, db/repositories/lease-repository.ts). */
export interface LeaseTable {
  name: string;
  holder: string | null;
  held_until: DbTime;
  rerun_requests: number;
}

export interface ApiClientTable {
  id: number;
  name: string;
  secret_hash: string;
  scope: string;
  created_at: DbTime;
}

export interface MemorySampleTable {
  id: number;
  execution_id: number;
  job_instance_id: number;
  job_definition_id: number;
  rss_kb: number;
  sampled_at: DbTime;
}

export interface AlertTable {
  id: number;
  kind: string;
  /** What the alert is about, e.g. `execution:42`; with `kind` it is unique, so each alert is raised once. */
  subject: string;
  raised_at: DbTime;
}

/** The hi/lo sequence: one row per sequence name, `next_id` is the first id not yet handed out. */
export interface IdBlockTable {
  name: string;
  next_id: number;
}

/** A person who signed in to the console (migration 0002), keyed by lower-cased email. */
export interface ConsoleUserTable {
  id: number;
  email: string;
  name: string;
  created_at: DbTime;
  last_signed_in_at: DbTime;
}

/** Who administers a definition (0002); an email may be named before its first sign-in. */
export interface DefinitionAdminTable {
  job_definition_id: number;
  email: string;
  created_at: DbTime;
}

/** A person's bookmark of a definition (0002). */
export interface DefinitionStarTable {
  email: string;
  job_definition_id: number;
  created_at: DbTime;
}

export interface Database {
  job_definitions: JobDefinitionTable;
  tags: TagTable;
  job_definition_tags: JobDefinitionTagTable;
  script_revisions: ScriptRevisionTable;
  job_schedules: JobScheduleTable;
  job_suspend_schedules: JobSuspendScheduleTable;
  job_instances: JobInstanceTable;
  tokens: TokenTable;
  executions: ExecutionTable;
  execution_histories: ExecutionHistoryTable;
  workers: WorkerTable;
  process_signals: ProcessSignalTable;
  instance_logs: InstanceLogTable;
  events: EventTable;
  event_deliveries: EventDeliveryTable;
  schedule_slots: ScheduleSlotTable;
  scheduler_state: SchedulerStateTable;
  leases: LeaseTable;
  api_clients: ApiClientTable;
  memory_samples: MemorySampleTable;
  alerts: AlertTable;
  id_blocks: IdBlockTable;
  console_users: ConsoleUserTable;
  definition_admins: DefinitionAdminTable;
  definition_stars: DefinitionStarTable;
}

/** The console's tables (migration 0002), for views that add tables of their own (`withTables`). */
export type ConsoleTables = Pick<Database, 'console_users' | 'definition_admins' | 'definition_stars'>;

export type JobDefinitionRow = Selectable<JobDefinitionTable>;
export type InsertableJobDefinitionRow = Insertable<JobDefinitionTable>;
export type UpdateableJobDefinitionRow = Updateable<JobDefinitionTable>;
export type JobInstanceRow = Selectable<JobInstanceTable>;
export type InsertableJobInstanceRow = Insertable<JobInstanceTable>;
export type TokenRow = Selectable<TokenTable>;
export type InsertableTokenRow = Insertable<TokenTable>;
export type ExecutionRow = Selectable<ExecutionTable>;
export type InsertableExecutionRow = Insertable<ExecutionTable>;
export type ExecutionHistoryRow = Selectable<ExecutionHistoryTable>;
export type WorkerRow = Selectable<WorkerTable>;
export type ProcessSignalRow = Selectable<ProcessSignalTable>;
export type InstanceLogRow = Selectable<InstanceLogTable>;
export type EventRow = Selectable<EventTable>;
export type EventDeliveryRow = Selectable<EventDeliveryTable>;
export type ScheduleSlotRow = Selectable<ScheduleSlotTable>;
export type ApiClientRow = Selectable<ApiClientTable>;
export type MemorySampleRow = Selectable<MemorySampleTable>;
export type AlertRow = Selectable<AlertTable>;
export type ConsoleUserRow = Selectable<ConsoleUserTable>;
