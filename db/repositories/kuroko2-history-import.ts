/**
 * The history half of `kuroko import kuroko2`: one finished Kuroko2 instance written with its log lines, its
 * executions' history rows and its memory peak, in statements small enough for the Data API.
 */
import type { Transaction } from 'kysely';
import { LOG_LEVEL } from '../../core/model';
import type { Instance, LogLevel } from '../../core/model';
import type { ExecutionHistory, IdGenerator } from '../../core/ports';
import type { Database } from '../schema';
import { IMPORT_KIND, type Kuroko2ImportTables } from './kuroko2-import-tables';

/** Rows per INSERT of log lines. */
const LOG_ROWS_PER_INSERT = 100;
/**
 * Bytes of log text per INSERT: a Data API request may carry 4 MiB in all
 * (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_BatchExecuteStatement.html), so a statement
 * stays at a quarter of it; a single larger line goes alone.
 */
const LOG_BYTES_PER_INSERT = 1024 * 1024;

/** Splits log lines into INSERT-sized groups by count and bytes. */
export function chunkLogs<T extends { message: string }>(logs: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const log of logs) {
    const size = Buffer.byteLength(log.message);
    if (current.length > 0 && (current.length >= LOG_ROWS_PER_INSERT || bytes + size > LOG_BYTES_PER_INSERT)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(log);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** An imported command's history: an ExecutionHistory before the ids of the rows it will belong to exist. */
export type ImportedExecution = Omit<ExecutionHistory, 'id' | 'executionId' | 'instanceId' | 'definitionId' | 'tokenId'>;

/** An imported instance: an Instance before its id exists, with what Kuroko2 kept of it. */
export interface ImportedInstance extends Omit<Instance, 'id'> {
  sourceId: number;
  logs: { level: string; message: string; createdAt: Date }[];
  executions: ImportedExecution[];
  memory: { rssKb: number; sampledAt: Date } | null;
}

function logLevelOf(level: string): LogLevel {
  const upper = level.toUpperCase();
  if (upper === LOG_LEVEL.warn || upper === 'WARNING') return LOG_LEVEL.warn;
  if (upper === LOG_LEVEL.error || upper === 'FATAL') return LOG_LEVEL.error;
  return LOG_LEVEL.info;
}

/** Ids one imported instance takes: itself, a log line each, an execution and its history row each, a memory sample. */
export function idsPerImportedInstance(instance: ImportedInstance): number {
  return 1 + instance.logs.length + instance.executions.length * 2 + 1;
}

/** Inserts one imported instance within `db`'s transaction, its import mark first. */
export async function insertImportedInstance(
  db: Transaction<Database & Kuroko2ImportTables>,
  ids: IdGenerator,
  instance: ImportedInstance,
  now: Date,
): Promise<void> {
  const instanceId = await ids.nextId();
  // The mark first: a concurrent second import of the same instance fails on its key instead of duplicating it.
  await db.insertInto('kuroko2_imports').values({ kind: IMPORT_KIND.instance, source_id: instance.sourceId, target_id: instanceId, imported_at: now }).execute();
  await db
    .insertInto('job_instances')
    .values({
      id: instanceId,
      job_definition_id: instance.definitionId,
      script: instance.script,
      launched_by: instance.launchedBy,
      retrying: instance.retrying,
      env: '{}',
      idempotency_key: null,
      idempotency_fingerprint: null,
      created_at: instance.createdAt,
      finished_at: instance.finishedAt,
      canceled_at: instance.canceledAt,
      error_at: instance.errorAt,
    })
    .execute();
  for (const chunk of chunkLogs(instance.logs)) {
    const rows = [];
    for (const log of chunk) {
      rows.push({ id: await ids.nextId(), job_instance_id: instanceId, level: logLevelOf(log.level), message: log.message, created_at: log.createdAt });
    }
    await db.insertInto('instance_logs').values(rows).execute();
  }
  let firstExecutionId = 0;
  for (const e of instance.executions) {
    const executionId = await ids.nextId();
    if (firstExecutionId === 0) firstExecutionId = executionId;
    await db
      .insertInto('execution_histories')
      .values({
        id: await ids.nextId(),
        execution_id: executionId,
        job_instance_id: instanceId,
        job_definition_id: instance.definitionId,
        token_id: 0,
        queue: e.queue,
        shell: e.shell,
        hostname: e.hostname,
        worker_id: e.workerId,
        pid: e.pid,
        started_at: e.startedAt,
        finished_at: e.finishedAt,
        exit_status: e.exitStatus,
        term_signal: e.termSignal,
      })
      .execute();
  }
  if (instance.memory) {
    await db
      .insertInto('memory_samples')
      .values({
        id: await ids.nextId(),
        execution_id: firstExecutionId,
        job_instance_id: instanceId,
        job_definition_id: instance.definitionId,
        rss_kb: instance.memory.rssKb,
        sampled_at: instance.memory.sampledAt,
      })
      .execute();
  }
}
