/** Row <-> domain mappers: the one place that knows both the column shapes and the domain records. */
import * as z from 'zod/mini';
import type { Definition, Execution, Instance, PreventMulti, Token, TokenContext } from '../../core/model';
import type { ExecutionHistory } from '../../core/ports';
import { ROW_LIMITS, prefixWithinBytes, suffixWithinBytes, truncateUtf8 } from '../../core/row-limits';
import { fromDbBool, fromDbInt, fromDbTime, fromNullableDbTime, parseJsonColumn, toJsonColumn } from '../column-codec';
import type {
  ExecutionRow,
  InsertableExecutionRow,
  InsertableJobInstanceRow,
  InsertableTokenRow,
  JobDefinitionRow,
  JobInstanceRow,
  TokenRow,
} from '../schema';

const stringMap = z.record(z.string(), z.string());

/** Token contexts are written only by the engine; the schema checks the shape the engine relies on. */
const tokenContextSchema = z.looseObject({
  meta: z.object({
    launched_time: z.string(),
    job_definition_id: z.number(),
    job_definition_name: z.string(),
    job_instance_id: z.number(),
  }),
  ENV: z.optional(stringMap),
  QUEUE: z.optional(z.string()),
  TIMEOUT: z.optional(z.number()),
  EXPECTED_TIME: z.optional(z.number()),
  EXPECTED_TIME_NOTIFIED_AT: z.optional(z.number()),
  AUTO_SKIP_ERROR: z.optional(z.boolean()),
  SLEEP: z.optional(z.number()),
  RETRY: z.optional(z.record(z.string(), z.object({ retried_count: z.number(), count: z.number(), sleep_time: z.number() }))),
  WAIT: z.optional(
    z.object({
      jobs: z.array(
        z.object({
          job_definition_id: z.number(),
          period: z.enum(['hourly', 'daily', 'weekly', 'monthly']),
          start_from: z.number(),
          start_to: z.number(),
          received: z.boolean(),
        }),
      ),
      timeout: z.number(),
      started_at: z.number(),
    }),
  ),
  sub_process_id: z.optional(z.number()),
  fork_children_ids: z.optional(z.record(z.string(), z.array(z.number()))),
  RAILS_ENV: z.optional(z.string()),
  FAN_OUT: z.optional(z.number()),
  SUB_PROCESS_DEPTH: z.optional(z.number()),
});

/** Maps a job_definitions row. */
export function toDefinition(row: JobDefinitionRow): Definition {
  return {
    id: fromDbInt(row.id),
    name: row.name,
    description: row.description,
    script: row.script,
    timeZone: row.time_zone,
    suspended: fromDbBool(row.suspended),
    preventMulti: Number(row.prevent_multi) as PreventMulti,
    notifyCancellation: fromDbBool(row.notify_cancellation),
    notifyAll: fromDbBool(row.notify_all),
    apiAllowed: fromDbBool(row.api_allowed),
    slackChannel: row.slack_channel,
    webhookUrl: row.webhook_url,
    catchUpWindowMinutes: Number(row.catch_up_window_minutes),
    retentionDays: row.retention_days === null || row.retention_days === undefined ? null : Number(row.retention_days),
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
  };
}

/** Maps a job_instances row. */
export function toInstance(row: JobInstanceRow): Instance {
  return {
    id: fromDbInt(row.id),
    definitionId: fromDbInt(row.job_definition_id),
    script: row.script,
    launchedBy: row.launched_by,
    retrying: fromDbBool(row.retrying),
    createdAt: fromDbTime(row.created_at),
    finishedAt: fromNullableDbTime(row.finished_at),
    canceledAt: fromNullableDbTime(row.canceled_at),
    errorAt: fromNullableDbTime(row.error_at),
  };
}

/** The extra environment an instance was launched with (its `env` column). */
export function instanceEnvOf(row: Pick<JobInstanceRow, 'env'>): Record<string, string> {
  return parseJsonColumn(stringMap, row.env, 'job_instances.env');
}

/** The row of a new instance. */
export function fromInstance(
  instance: Instance,
  env: Record<string, string> = {},
  idempotency: { key: string; fingerprint: string } | null = null,
): InsertableJobInstanceRow {
  return {
    id: instance.id,
    job_definition_id: instance.definitionId,
    script: instance.script,
    launched_by: instance.launchedBy,
    retrying: instance.retrying,
    env: toJsonColumn(env),
    idempotency_key: idempotency?.key ?? null,
    idempotency_fingerprint: idempotency?.fingerprint ?? null,
    created_at: instance.createdAt,
    finished_at: instance.finishedAt,
    canceled_at: instance.canceledAt,
    error_at: instance.errorAt,
  };
}

/** Maps a tokens row. */
export function toToken(row: TokenRow): Token {
  return {
    id: fromDbInt(row.id),
    uuid: row.uuid,
    instanceId: fromDbInt(row.job_instance_id),
    definitionId: fromDbInt(row.job_definition_id),
    parentId: row.parent_id === null ? null : fromDbInt(row.parent_id),
    script: row.script,
    path: row.path,
    status: row.status,
    message: row.message,
    context: parseJsonColumn(tokenContextSchema, row.context, 'tokens.context') as TokenContext,
    version: Number(row.version),
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
  };
}

/** The row of a token. */
export function fromToken(token: Token): InsertableTokenRow {
  return {
    id: token.id,
    uuid: token.uuid,
    job_instance_id: token.instanceId,
    job_definition_id: token.definitionId,
    parent_id: token.parentId,
    script: token.script,
    path: token.path,
    status: token.status,
    message: truncateUtf8(token.message, ROW_LIMITS.tokenMessageBytes),
    context: toJsonColumn(token.context),
    version: token.version,
    created_at: token.createdAt,
    updated_at: token.updatedAt,
  };
}

/** Maps an executions row. */
export function toExecution(row: ExecutionRow): Execution {
  return {
    id: fromDbInt(row.id),
    uuid: row.uuid,
    tokenId: fromDbInt(row.token_id),
    instanceId: fromDbInt(row.job_instance_id),
    definitionId: fromDbInt(row.job_definition_id),
    queue: row.queue,
    shell: row.shell,
    env: parseJsonColumn(stringMap, row.env, 'executions.env'),
    createdAt: fromDbTime(row.created_at),
    attempt: Number(row.attempt),
    workerId: row.worker_id === null ? null : fromDbInt(row.worker_id),
    hostname: row.hostname,
    leaseExpiresAt: fromNullableDbTime(row.lease_expires_at),
    claimedAt: fromNullableDbTime(row.claimed_at),
    pid: row.pid === null ? null : Number(row.pid),
    startedAt: fromNullableDbTime(row.started_at),
    finishedAt: fromNullableDbTime(row.finished_at),
    exitStatus: row.exit_status === null ? null : Number(row.exit_status),
    termSignal: row.term_signal,
    outputHead: row.output_head,
    outputTail: row.output_tail,
    killRequestedAt: fromNullableDbTime(row.kill_requested_at),
    lostReason: row.lost_reason,
  };
}

/** The row of a new execution. */
export function fromExecution(execution: Execution): InsertableExecutionRow {
  return {
    id: execution.id,
    uuid: execution.uuid,
    token_id: execution.tokenId,
    job_instance_id: execution.instanceId,
    job_definition_id: execution.definitionId,
    queue: execution.queue,
    shell: execution.shell,
    env: toJsonColumn(execution.env),
    created_at: execution.createdAt,
    attempt: execution.attempt,
    worker_id: execution.workerId,
    hostname: execution.hostname,
    lease_expires_at: execution.leaseExpiresAt,
    claimed_at: execution.claimedAt,
    pid: execution.pid,
    started_at: execution.startedAt,
    finished_at: execution.finishedAt,
    exit_status: execution.exitStatus,
    term_signal: execution.termSignal,
    ...outputColumns(execution.outputHead, execution.outputTail),
    kill_requested_at: execution.killRequestedAt,
    lost_reason: execution.lostReason,
  };
}

/** The row of an execution history entry. */
export function fromExecutionHistory(history: ExecutionHistory) {
  return {
    id: history.id,
    execution_id: history.executionId,
    job_instance_id: history.instanceId,
    job_definition_id: history.definitionId,
    token_id: history.tokenId,
    queue: history.queue,
    shell: history.shell,
    hostname: history.hostname,
    worker_id: history.workerId,
    pid: history.pid,
    started_at: history.startedAt,
    finished_at: history.finishedAt,
    exit_status: history.exitStatus,
    term_signal: history.termSignal,
  };
}

/**
 * The output excerpts as stored: the head's first and the tail's last ROW_LIMITS bytes, whatever an agent (of any
 * version) sends, so an execution row stays within the Data API's 64 KB.
 */
export function outputColumns(head: string, tail: string): { output_head: string; output_tail: string } {
  return { output_head: prefixWithinBytes(head, ROW_LIMITS.outputHeadBytes), output_tail: suffixWithinBytes(tail, ROW_LIMITS.outputTailBytes) };
}
