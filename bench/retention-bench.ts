/**
 * `npm run bench:retention`: fills a database with a year of a busy deployment (KUROKO_BENCH_INSTANCES_PER_DAY
 * instances a day, 150 by default, each with tokens, an execution history, 20 log lines, events and deliveries,
 * memory samples: 1.1 million log lines by default), then runs the retention pass (90 days) while a processor loop
 * steps live instances on another connection, and prints how long the clean-up took and the processor's pass
 * latency before and during it.
 *
 * MariaDB by default (KUROKO_TEST_MYSQL_URL, root@127.0.0.1:3306); KUROKO_BENCH_DIALECT=sqlite for an SQLite file.
 * KUROKO_RETENTION_BATCH (200) sets the instances per batch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import type { Kysely } from 'kysely';
import { runRetentionPass } from '../core/services/retention-service';
import { createDatabase, type DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { migrateToLatest } from '../db/migrator';
import { RetentionRepository } from '../db/repositories/retention-repository';
import type { Database } from '../db/schema';
import { createEngineServices } from '../app/engine-services';
import { insertDefinition } from '../test/helpers/engine-fixtures';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const DIALECT = process.env.KUROKO_BENCH_DIALECT ?? 'mysql';
const PER_DAY = Number(process.env.KUROKO_BENCH_INSTANCES_PER_DAY ?? 150);
const BATCH = Number(process.env.KUROKO_RETENTION_BATCH ?? 200);
const DAYS = 365;
const DEFINITIONS = 50;
const LOGS_PER_INSTANCE = 20;
const ROWS_PER_INSERT = 1000;
const FIRST_ID = 1_000_000_000;
const DAY_MS = 86_400_000;
/** Live instances the processor keeps stepping: a few launched per pass, 10 noops each. */
const LIVE_SCRIPT = 'noop:\n'.repeat(10);
const BASELINE_MS = 5_000;

async function openDatabase(): Promise<{ url: string; cleanup: () => Promise<void> }> {
  if (DIALECT === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-retention-bench-'));
    return { url: `sqlite:${join(dir, 'bench.db')}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `kuroko_retention_bench_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  const dbUrl = new URL(MYSQL_URL);
  dbUrl.pathname = `/${name}`;
  return {
    url: dbUrl.toString(),
    cleanup: async () => {
      const c = await createConnection({ uri: MYSQL_URL });
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    },
  };
}

/** Buffers rows per table and writes them as multi-row INSERTs. */
class BulkWriter {
  readonly #rows = new Map<keyof Database, Record<string, unknown>[]>();
  rowsWritten = 0;
  constructor(private readonly db: Kysely<Database>) {}
  async add(table: keyof Database, row: Record<string, unknown>): Promise<void> {
    let rows = this.#rows.get(table);
    if (!rows) this.#rows.set(table, (rows = []));
    rows.push(row);
    if (rows.length >= ROWS_PER_INSERT) await this.flush(table);
  }
  async flush(table?: keyof Database): Promise<void> {
    for (const name of table ? [table] : [...this.#rows.keys()]) {
      const rows = this.#rows.get(name) ?? [];
      if (rows.length === 0) continue;
      this.#rows.set(name, []);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one writer for every table
      await (this.db as any).insertInto(name).values(rows).execute();
      this.rowsWritten += rows.length;
    }
  }
}

interface Fill {
  instances: number;
  logLines: number;
  rows: number;
  ms: number;
  expired: number;
}

async function fill(db: Kysely<Database>, now: Date): Promise<Fill> {
  const started = performance.now();
  for (let d = 1; d <= DEFINITIONS; d++) await insertDefinition(db, d, 'execute: work\n', { name: `bench-${d}` });
  const w = new BulkWriter(db);
  let id = FIRST_ID;
  let instances = 0;
  let logLines = 0;
  let expired = 0;
  const cutoff = now.getTime() - 90 * DAY_MS;
  for (let day = DAYS; day >= 1; day--) {
    for (let n = 0; n < PER_DAY; n++) {
      const created = new Date(now.getTime() - day * DAY_MS + n * Math.floor(DAY_MS / PER_DAY));
      const ended = new Date(created.getTime() + 60_000);
      const instanceId = id++;
      const definitionId = 1 + (n % DEFINITIONS);
      // 1 in 10 canceled, 1 in 200 left in error (kept), the rest finished.
      const kind = n % 200 === 7 ? 'error' : n % 10 === 3 ? 'canceled' : 'finished';
      if (kind !== 'error' && ended.getTime() < cutoff) expired++;
      await w.add('job_instances', {
        id: instanceId, job_definition_id: definitionId, script: 'execute: work\n', launched_by: 'cron', retrying: false, env: '{}',
        idempotency_key: null, idempotency_fingerprint: null, created_at: created,
        finished_at: kind === 'finished' ? ended : null, canceled_at: kind === 'canceled' ? ended : null, error_at: kind === 'error' ? ended : null,
      });
      const tokenIds = [id++, id++];
      for (const [i, tokenId] of tokenIds.entries()) {
        await w.add('tokens', {
          id: tokenId, uuid: `${instanceId}-${i}`, job_instance_id: instanceId, job_definition_id: definitionId, parent_id: i === 0 ? null : tokenIds[0],
          script: 'execute: work\n', path: i === 0 ? '/' : '/0-execute', status: 'finished', message: '', context: '{}', version: 3, created_at: created, updated_at: ended,
        });
      }
      const executionId = id++;
      await w.add('execution_histories', {
        id: id++, execution_id: executionId, job_instance_id: instanceId, job_definition_id: definitionId, token_id: tokenIds[1], queue: '@default',
        shell: 'work', hostname: 'worker-1', worker_id: 1, pid: 4242, started_at: created, finished_at: ended, exit_status: 0, term_signal: null,
      });
      for (let l = 0; l < LOGS_PER_INSTANCE; l++) {
        await w.add('instance_logs', { id: id++, job_instance_id: instanceId, level: 'INFO', message: `step ${l} of instance ${instanceId}: something happened`, created_at: created });
        logLines++;
      }
      for (const type of ['launch', 'finished']) {
        const eventId = id++;
        await w.add('events', { id: eventId, type, job_instance_id: instanceId, job_definition_id: definitionId, token_id: null, message: type, created_at: ended });
        await w.add('event_deliveries', { id: id++, event_id: eventId, channel: 'slack', status: 'delivered', attempts: 1, next_attempt_at: ended, delivered_at: ended, last_error: null });
      }
      for (let m = 0; m < 3; m++) {
        await w.add('memory_samples', { id: id++, execution_id: executionId, job_instance_id: instanceId, job_definition_id: definitionId, rss_kb: 10_000 + m, sampled_at: ended });
      }
      instances++;
    }
  }
  await w.flush();
  // Ids the engine hands out from now on come after the filled ones.
  await db.updateTable('id_blocks').set({ next_id: id + 1 }).execute();
  return { instances, logLines, rows: w.rowsWritten, ms: performance.now() - started, expired };
}

interface Latencies {
  passes: number;
  steps: number;
  worstMs: number;
  p99Ms: number;
  meanMs: number;
}

function summarize(samples: number[], steps: number): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
  return {
    passes: samples.length,
    steps,
    worstMs: sorted[sorted.length - 1] ?? 0,
    p99Ms: p99,
    meanMs: samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length),
  };
}

/** Launches live instances and steps them until `until` resolves; returns each pass's latency. */
async function processorLoop(handle: DatabaseHandle, until: Promise<unknown>): Promise<Latencies> {
  const services = createEngineServices(handle, { ids: createIdGenerator(handle.db, { blockSize: 1000 }) });
  let done = false;
  void until.finally(() => (done = true));
  const samples: number[] = [];
  let steps = 0;
  while (!done) {
    await services.operations.launch({ definitionId: 1_000_001, launchedBy: 'bench' });
    const started = performance.now();
    const result = await services.processorPass();
    samples.push(performance.now() - started);
    steps += result.committed;
    // SQLite answers synchronously: let timers and the retention pass run between passes.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return summarize(samples, steps);
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  const { url, cleanup } = await openDatabase();
  const processorHandle = createDatabase(url);
  // On MySQL the pass runs on its own connection (another process in production); SQLite has one writer, and the
  // local mode runs every loop on its one handle, as here.
  const retentionHandle = DIALECT === 'sqlite' ? processorHandle : createDatabase(url);
  try {
    await migrateToLatest(processorHandle.db);
    const now = new Date();
    console.log(`bench:retention on ${DIALECT}: filling a year (${DAYS} days x ${PER_DAY} instances a day) ...`);
    const filled = await fill(processorHandle.db, now);
    console.log(
      `filled ${filled.instances.toLocaleString('en')} instances, ${filled.logLines.toLocaleString('en')} log lines, ` +
        `${filled.rows.toLocaleString('en')} rows in all in ${(filled.ms / 1000).toFixed(1)} s; ${filled.expired.toLocaleString('en')} instances are past 90 days`,
    );
    await insertDefinition(processorHandle.db, 1_000_001, LIVE_SCRIPT, { name: 'live' });

    const baseline = await processorLoop(processorHandle, new Promise((resolve) => setTimeout(resolve, BASELINE_MS)));

    const started = performance.now();
    const pass = runRetentionPass({
      store: new RetentionRepository(retentionHandle.db),
      clock: { now: () => now },
      globalDays: 90,
      batchSize: BATCH,
    });
    const during = await processorLoop(processorHandle, pass.catch(() => undefined));
    const result = await pass;
    const cleanMs = performance.now() - started;

    const left = await retentionHandle.db.selectFrom('job_instances').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const logsLeft = await retentionHandle.db.selectFrom('instance_logs').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    console.log(
      `retention pass (90 days, batches of ${BATCH}): deleted ${result.deletedInstances.toLocaleString('en')} instances in ${result.batches} batches ` +
        `in ${(cleanMs / 1000).toFixed(1)} s (${Math.round(result.deletedInstances / (cleanMs / 1000))} instances/s); ` +
        `${Number(left.n).toLocaleString('en')} instances and ${Number(logsLeft.n).toLocaleString('en')} log lines left`,
    );
    console.log(`processor pass latency before: worst ${fmt(baseline.worstMs)}, p99 ${fmt(baseline.p99Ms)}, mean ${fmt(baseline.meanMs)} over ${baseline.passes} passes (${baseline.steps} steps)`);
    console.log(`processor pass latency during: worst ${fmt(during.worstMs)}, p99 ${fmt(during.p99Ms)}, mean ${fmt(during.meanMs)} over ${during.passes} passes (${during.steps} steps)`);
    if (result.deletedInstances !== filled.expired) throw new Error(`expected ${filled.expired} instances deleted, got ${result.deletedInstances}`);
  } finally {
    await processorHandle.close();
    if (retentionHandle !== processorHandle) await retentionHandle.close();
    await cleanup();
  }
}

await main();
