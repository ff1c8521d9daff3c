/**
 * Ports: everything the pure core needs from the outside world. Repositories in `db/` implement them;
 * `test/helpers/in-memory-store.ts` implements them in memory for unit tests.
 */
import type { Definition, EventRecord, Execution, Instance, LogEntry, Token } from './model';

/** The wall clock. */
export interface Clock {
  now(): Date;
}

/** Integer ids (unique across every table) and uuids. */
export interface IdGenerator {
  nextId(): Promise<number>;
  uuid(): string;
  /**
   * Makes at least `count` ids available without I/O. Call it before a transaction that hands out ids: on
   * SQLite the one connection is busy inside the transaction, so a reservation there could never run.
   */
  ensureAvailable?(count: number): Promise<void>;
  /**
   * ensureAvailable for a transaction that may run beside others: the `count` ids stay set aside for it until the
   * returned release is called, so transactions begun together never run out inside (a refill there waits for a
   * connection, and on the Data API stand-in the ones open held them all: the processor's parallel commits hung).
   */
  hold?(count: number): Promise<() => void>;
}

/** A completed command, kept after its execution row is removed. */
export interface ExecutionHistory {
  id: number;
  executionId: number;
  instanceId: number;
  definitionId: number;
  tokenId: number;
  queue: string;
  shell: string;
  hostname: string | null;
  workerId: number | null;
  pid: number | null;
  startedAt: Date | null;
  finishedAt: Date;
  exitStatus: number | null;
  termSignal: string | null;
}

/** Columns of an instance that a step may change. `errorAt: null` clears it. */
export interface InstancePatch {
  finishedAt?: Date;
  canceledAt?: Date;
  errorAt?: Date | null;
  retrying?: boolean;
}

/** A request to launch an instance, from the API, the scheduler, a person or a `sub_process:` node. */
export interface LaunchRequest {
  /** Pre-allocated id of the new instance, so the caller can refer to it before it is written. */
  instanceId: number;
  definitionId: number;
  launchedBy: string;
  /** Ad-hoc script; the definition's when absent. */
  script?: string;
  /** Extra environment for every command of the instance. */
  env?: Record<string, string>;
  /** True for cron launches: the definition's `suspended` flag then blocks the launch. */
  scheduled?: boolean;
  /** For a sub process: copies of the launching token that may run at once (the token budget's multiplier). */
  fanOut?: number;
  /** For a sub process: how many sub_process launches led to it. */
  subProcessDepth?: number;
}

/** A kill of a running command: TERM to its process group, KILL after the grace period. */
export interface KillRequest {
  executionId: number;
  reason: string;
}

/**
 * Everything one engine step (or a manual retry, skip or cancel) changes, as data. The writer applies it
 * atomically and fenced on the token's version: if another processor moved the token first, nothing is
 * written and `commit` answers false.
 */
export interface StepOutcome {
  tokenId: number;
  /** The version the step read; the write succeeds only if the row still has it. */
  expectedVersion: number;
  /** The token's new state (its version already bumped), or null when the token is removed. */
  token: Token | null;
  instanceId: number;
  instancePatch?: InstancePatch;
  /** Remove every token of the instance (root finished, critical error, cancel). */
  deleteInstanceTokens?: boolean;
  newTokens: Token[];
  newExecution?: Execution;
  /** A finished execution to move into the history (and delete). */
  archivedExecution?: ExecutionHistory;
  kills: KillRequest[];
  launches: LaunchRequest[];
  logs: LogEntry[];
  events: EventRecord[];
}

/** What the engine reads while stepping a token. Implementations may prefetch and cache. */
export interface StepReader {
  findExecutionByToken(tokenId: number): Promise<Execution | undefined>;
  findInstance(instanceId: number): Promise<Instance | undefined>;
  findDefinition(definitionId: number): Promise<Definition | undefined>;
  findToken(tokenId: number): Promise<Token | undefined>;
  findTokens(tokenIds: readonly number[]): Promise<Token[]>;
  findTokensByInstance(instanceId: number): Promise<Token[]>;
  /** Unfinished (not yet archived) executions of an instance, for cancel. */
  findExecutionsByInstance(instanceId: number): Promise<Execution[]>;
  /** The first finished instance of a definition created in [from, to], for `wait:`. */
  findFinishedInstanceCreatedBetween(definitionId: number, from: Date, to: Date): Promise<Instance | undefined>;
}

/** Applies step outcomes. */
export interface StepWriter {
  /** Applies the outcome atomically; false when the token's version moved on (another processor won). */
  commit(outcome: StepOutcome): Promise<boolean>;
}

/** The one logging port. Powertools' Logger, the CLI's line logger and test spies all fit it. */
export interface Logger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** A logger that drops everything (tests of other things, quiet modes). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
