/**
 * The retention Lambda over the local Data API server with the service's strict limits (1 MiB a response, 64 KB a
 * row, 65,536 characters of SQL, one statement at a time per transaction): a year's worth of old instances, each with
 * many executions, histories and log lines, goes in batches that each fit, a pass stops before the function's timeout
 * and the next day's run carries on, and instances that are recent or still in error stay with every row about them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION_BATCH_SIZE, type RetentionPassResult } from '../../core/services/retention-service';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';
import type { Database } from '../../db/schema';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as RetentionModule from '../../functions/retention/handler';
import { startDataApiServer, type DataApiServer } from '../helpers/data-api-server';
import { createMysqlDatabase } from '../helpers/test-database';
import { definitionRow } from '../helpers/engine-fixtures';
import { applyEnv, lambdaContext, scheduledEvent } from './function-fixtures';

const DAY_MS = 86_400_000;
const OLD = 450;
/** More executions in one batch than collectExecutionIds reads per page (5,000), so it pages. */
const EXECUTIONS_PER_INSTANCE = 26;
const LOG_LINES_PER_INSTANCE = 20;
const CHUNK = 1_000;
/** Ids near 2^50: long literals in every IN list. */
const BASE_ID = 2 ** 50;

let mysql: Awaited<ReturnType<typeof createMysqlDatabase>>;
let server: DataApiServer;
let direct: DatabaseHandle;
let retention: typeof RetentionModule;
const kept: number[] = [];

async function insertChunked<T extends keyof Database>(table: T, rows: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one seeding helper over several tables
    await (direct.db as any).insertInto(table).values(rows.slice(i, i + CHUNK)).execute();
  }
}

async function seed(): Promise<void> {
  const now = Date.now();
  await direct.db.insertInto('job_definitions').values(definitionRow(1, 'noop:\n', { createdAt: new Date(now - 400 * DAY_MS) })).execute();
  const instances: Record<string, unknown>[] = [];
  const executions: Record<string, unknown>[] = [];
  const histories: Record<string, unknown>[] = [];
  const logs: Record<string, unknown>[] = [];
  const add = (n: number, ageDays: number, kind: 'finished' | 'error') => {
    const id = BASE_ID + n * 1_000;
    const at = new Date(now - ageDays * DAY_MS);
    if (kind === 'error' || ageDays < 90) kept.push(id);
    instances.push({ id, job_definition_id: 1, script: 'noop:', launched_by: 'test', retrying: false, env: '{}', idempotency_key: null, idempotency_fingerprint: null, created_at: at, finished_at: kind === 'finished' ? at : null, canceled_at: null, error_at: kind === 'error' ? at : null });
    for (let e = 1; e <= EXECUTIONS_PER_INSTANCE; e++) {
      executions.push({ id: id + e, uuid: `e-${id + e}`, token_id: id + e, job_instance_id: id, job_definition_id: 1, queue: '@default', shell: 'true', env: '{}', created_at: at, worker_id: null, hostname: null, lease_expires_at: null, claimed_at: null, pid: null, started_at: null, finished_at: at, exit_status: 0, term_signal: null, output_head: 'x'.repeat(1_000), output_tail: '', kill_requested_at: null, lost_reason: null });
      histories.push({ id: id + e, execution_id: id + e, job_instance_id: id, job_definition_id: 1, token_id: id, queue: '@default', shell: 'true', hostname: null, worker_id: null, pid: null, started_at: at, finished_at: at, exit_status: 0, term_signal: null });
    }
    for (let l = 1; l <= LOG_LINES_PER_INSTANCE; l++) logs.push({ id: id + l, job_instance_id: id, level: 'INFO', message: `line ${l} ${'y'.repeat(500)}`, created_at: at });
  };
  for (let n = 0; n < OLD; n++) add(n, 100 + (n % 265), 'finished');
  for (let n = OLD; n < OLD + 5; n++) add(n, 10, 'finished');
  for (let n = OLD + 5; n < OLD + 7; n++) add(n, 300, 'error');
  await insertChunked('job_instances', instances);
  await insertChunked('executions', executions);
  await insertChunked('execution_histories', histories);
  await insertChunked('instance_logs', logs);
}

beforeAll(async () => {
  mysql = await createMysqlDatabase();
  direct = createDatabase(mysql.url);
  await migrateToLatest(direct.db);
  await seed();
  // Strict: every limit of the service is on.
  server = await startDataApiServer({ mysqlUrl: mysql.url });
  applyEnv({
    [ENV_KEYS.stage]: 'test',
    [ENV_KEYS.dbClusterArn]: server.resourceArn,
    [ENV_KEYS.dbSecretArn]: server.secretArn,
    [ENV_KEYS.dbName]: mysql.name,
    [ENV_KEYS.dataApiEndpoint]: server.endpoint,
    [ENV_KEYS.powertoolsLogLevel]: 'ERROR',
    [ENV_KEYS.retentionDays]: '90',
    AWS_REGION: 'us-east-1',
  });
  retention = await import('../../functions/retention/handler');
}, 120_000);
afterAll(async () => {
  await retention?.runtime.close();
  await server?.close();
  await direct?.close();
  await mysql?.drop();
});

const run = (remainingMs: () => number) =>
  retention.handler(scheduledEvent('kuroko-test-RetentionSchedule'), lambdaContext('kuroko-test-retention', remainingMs)) as Promise<RetentionPassResult>;

const instanceIdsOf = async (table: 'job_instances' | 'executions' | 'execution_histories' | 'instance_logs'): Promise<number[]> => {
  const column = table === 'job_instances' ? 'id' : 'job_instance_id';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one query over several tables
  const rows: { v: unknown }[] = await (direct.db as any).selectFrom(table).select(`${column} as v`).distinct().execute();
  return rows.map((r) => Number(r.v)).sort((a, b) => a - b);
};

describe('retention handler', () => {
  it('stops taking batches when the function has less than a minute left, and the next run finishes the pass', async () => {
    let calls = 0;
    // Plenty of time when middy reads it (its timeout guard) and before the first batch; then the clock runs down.
    const first = await run(() => (calls++ < 2 ? 10 * 60_000 : retention.STOP_BEFORE_TIMEOUT_MS - 1));
    expect(first).toEqual({ deletedInstances: DEFAULT_RETENTION_BATCH_SIZE, batches: 1, removedOutputs: 0, stoppedEarly: true });

    const second = await run(() => 10 * 60_000);
    expect(second).toEqual({ deletedInstances: OLD - DEFAULT_RETENTION_BATCH_SIZE, batches: 2, removedOutputs: 0, stoppedEarly: false });
    expect(await run(() => 10 * 60_000)).toEqual({ deletedInstances: 0, batches: 0, removedOutputs: 0, stoppedEarly: false });
  }, 120_000);

  it('kept every recent instance and every instance in error with all their rows, and nothing of the others', async () => {
    const expected = [...kept].sort((a, b) => a - b);
    for (const table of ['job_instances', 'executions', 'execution_histories', 'instance_logs'] as const) {
      expect(await instanceIdsOf(table), table).toEqual(expected);
    }
  });

  it('stayed within the Data API limits: every batch fit, and no transaction was left open', () => {
    expect(server.largest().responseBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(server.largest().rowBytes).toBeLessThanOrEqual(64 * 1024);
    expect(server.openTransactions()).toBe(0);
  });
});
