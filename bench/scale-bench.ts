/**
 * `npm run bench:scale`: the AWS mode at the size of a large installation, over the local Data API server with
 * KUROKO_BENCH_LATENCY_MS (25 by default) per call, every statement measured against the Data API's limits.
 *
 * Setup (straight into MariaDB, not measured): KUROKO_BENCH_DEFINITIONS definitions (10,000) with realistic 30-line
 * scripts and ~2 KB Japanese descriptions, KUROKO_BENCH_SCHEDULES cron schedules on them (2,000). Then, over the
 * Data API:
 * 1. the scheduler pass as the Lambda runs it (the first pass sets the mark; the second is timed);
 * 2. KUROKO_BENCH_INFLIGHT instances (1,000) launched through the API's operations, run by the Lambda-style processor
 *    loop (nudged by the agents) and KUROKO_BENCH_AGENTS in-process agents (50, 2 slots each, polling every second as
 *    on EC2) for KUROKO_BENCH_SECONDS (60): processor steps per second and Data API calls per step;
 * 3. the API's list pages (GET /v1/definitions with limit=1000 through every page, and without a limit) while the
 *    instances are still in flight: the slowest page;
 * 4. once the load is gone, one instance of ten `execute: true` on the otherwise idle system: from one command's
 *    exit to the next command's start.
 * A meter on the SDK client (test/helpers/data-api-limits.ts) records the largest response, row and SQL text of
 * every statement of every phase; any over the limits is printed.
 */
import type { Kysely } from 'kysely';
import { createAgent, type Agent } from '../agent/agent';
import type { LogSink } from '../adapters/logs/file-log-sink';
import { DATA_API_MAX_RESPONSE_BYTES, DATA_API_MAX_ROW_BYTES, DATA_API_MAX_SQL_CHARS } from '../core/row-limits';
import { fromDbTime } from '../db/column-codec';
import { createDatabase, type DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { migrateToLatest } from '../db/migrator';
import { ApiClientRepository } from '../db/repositories/api-client-repository';
import type { Database } from '../db/schema';
import { createEngineServices } from '../app/engine-services';
import { createHttpApp } from '../http/http-app';
import { ensureApiClients } from '../http/api/http-auth';
import { processorPass } from '../app/passes';
import { runWhileBusy } from '../app/run-while-busy';
import { createLimitMeter } from '../test/helpers/data-api-limits';
import { startDataApiServer } from '../test/helpers/data-api-server';
import { definitionRow } from '../test/helpers/engine-fixtures';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { wakeable } from './wakeable';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const LATENCY_MS = knob('KUROKO_BENCH_LATENCY_MS', 25);
const DEFINITIONS = knob('KUROKO_BENCH_DEFINITIONS', 10_000);
const SCHEDULES = knob('KUROKO_BENCH_SCHEDULES', 2_000);
const IN_FLIGHT = knob('KUROKO_BENCH_INFLIGHT', 1_000);
const AGENTS = knob('KUROKO_BENCH_AGENTS', 50);
const LOAD_SECONDS = knob('KUROKO_BENCH_SECONDS', 60);
const SLOTS = 2;
const FIRST_ID = 1_000_000;
const ID_STRIDE = 10;
const INSERT_BATCH = 200;
const LAUNCH_CONCURRENCY = 8;
const LOAD_DEFINITIONS = 50;
const LOAD_SCRIPT = 'env: BENCH=scale\nnoop:\nexecute: true\nnoop:\nexecute: true\nnoop:\n';
const IDLE_STEPS = 10;
const IDLE_SCRIPT = 'execute: true\n'.repeat(IDLE_STEPS);
const LIST_PAGE = 1000;
const PROCESSOR_TIMEOUT_MS = 60_000;
const TICK_MS = 60_000;
const IDLE_DEADLINE_MS = 120_000;
const POLL_MS = 100;
const CLIENT = { name: 'bench', secret: 'bench-secret-0123456789' };
const AUTH = `Basic ${Buffer.from(`${CLIENT.name}:${CLIENT.secret}`).toString('base64')}`;
const KIB = 1024;

// The SDK's notice about future Node versions is noise in the printed figures.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const memorySink: LogSink = { append: async () => {}, close: async () => {}, read: async () => '' };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const kib = (bytes: number) => `${(bytes / KIB).toFixed(1)} KiB`;

/** A realistic 30-line script: env, a fork of twelve commands, a sequence of fourteen, Japanese comments. */
function thirtyLineScript(n: number): string {
  const lines = [`env: JOB_NO=${n}`, 'env: RAILS_ENV=production', 'fork:'];
  for (let i = 0; i < 12; i++) lines.push(`  execute: bundle exec rails runner "Batch${i}.run(${n})" # バッチ処理 ${i}`);
  lines.push('sequence:');
  for (let i = 0; i < 14; i++) lines.push(`  execute: ./bin/step-${i}.sh --job ${n} --date "$(date +%F)"`);
  lines.push('noop:');
  return `${lines.join('\n')}\n`;
}

/** The definitions, their schedules and the load's own definitions, in multi-row INSERTs on MariaDB. */
async function seed(db: Kysely<Database>): Promise<number[]> {
  const at = new Date(Date.now() - 24 * 60 * 60 * 1000);
  const description = (i: number) => `## バッチ ${i}\n${'毎日の売上データを集計して、レポートを作成します。'.repeat(28)}`;
  for (let start = 0; start < DEFINITIONS; start += INSERT_BATCH) {
    const rows = [];
    const schedules = [];
    for (let i = start; i < Math.min(DEFINITIONS, start + INSERT_BATCH); i++) {
      const id = FIRST_ID + i * ID_STRIDE;
      rows.push(definitionRow(id, thirtyLineScript(i), { name: `バッチ ${i}`, description: description(i), timeZone: 'Asia/Tokyo', preventMulti: 1, createdAt: at }));
      // Cron slots spread over the day, one per scheduled definition.
      if (i < SCHEDULES) schedules.push({ id: id + 1, job_definition_id: id, cron: `${i % 60} ${Math.floor(i / 60) % 24} * * *`, created_at: at });
    }
    await db.insertInto('job_definitions').values(rows).execute();
    if (schedules.length > 0) await db.insertInto('job_schedules').values(schedules).execute();
  }
  const loadIds: number[] = [];
  for (let i = 0; i < LOAD_DEFINITIONS + 1; i++) {
    const id = FIRST_ID - (i + 1) * ID_STRIDE;
    loadIds.push(id);
    const probe = i === LOAD_DEFINITIONS;
    await db
      .insertInto('job_definitions')
      .values(definitionRow(id, probe ? IDLE_SCRIPT : LOAD_SCRIPT, { name: probe ? 'idle probe' : `load ${i}`, createdAt: at }))
      .execute();
  }
  return loadIds;
}

async function main(): Promise<void> {
  const started = performance.now();
  const scratch = await createMysqlDatabase(MYSQL_URL);
  // The service pools connections in front of the cluster; 10 (the tests' default) would starve 50 agents' claims.
  const server = await startDataApiServer({ mysqlUrl: scratch.url, latencyMs: LATENCY_MS, poolSize: AGENTS + 20 });
  const url =
    `data-api://${server.resourceArn}?secret=${encodeURIComponent(server.secretArn)}` +
    `&database=${scratch.name}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
  const meter = createLimitMeter({ endpoint: server.endpoint });
  const handles: DatabaseHandle[] = [];
  const agents: Agent[] = [];
  let stop = false;
  const loops: Promise<void>[] = [];
  const wakes: (() => void)[] = [];
  const open = (options: { log?: () => void } = {}) => {
    const handle = createDatabase(url, { dataApiClient: meter.client, ...(options.log ? { log: options.log } : {}) });
    handles.push(handle);
    return handle;
  };
  const lines: string[] = [];
  const print = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  try {
    const mysql = createDatabase(scratch.url);
    handles.push(mysql);
    await migrateToLatest(mysql.db);
    const seedStarted = performance.now();
    const [idleProbe, ...loadIds] = (await seed(mysql.db)).reverse();
    print(
      `bench:scale - ${DEFINITIONS} definitions (30-line scripts, ~2 KB Japanese descriptions), ${Math.min(SCHEDULES, DEFINITIONS)} cron schedules, ` +
        `${IN_FLIGHT} instances in flight, ${AGENTS} agents x ${SLOTS} slots, Data API latency ${LATENCY_MS} ms per call ` +
        `(seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s)`,
    );

    // 1. The scheduler pass.
    const schedulerHandle = open();
    const scheduler = createEngineServices(schedulerHandle, { ids: createIdGenerator(schedulerHandle.db, { blockSize: 1000 }) });
    await scheduler.schedulerPass();
    server.resetCounts();
    const passStarted = performance.now();
    const pass = await scheduler.schedulerPass();
    const passMs = performance.now() - passStarted;
    print(
      `scheduler pass: ${(passMs / 1000).toFixed(2)} s, ${server.callCount()} Data API calls ` +
        `(launched ${pass.launched}, missed ${pass.missed}, skipped ${pass.skipped}); the Lambda's timeout is 30 s`,
    );

    // 2. Instances in flight, the processor loop and the agents.
    let processorStatements = 0;
    const processorHandle = open({ log: () => void processorStatements++ });
    const services = createEngineServices(processorHandle, { ids: createIdGenerator(processorHandle.db, { blockSize: 1000 }) });
    const processorWake = wakeable();
    wakes.push(() => processorWake.wake());
    for (let i = 0; i < AGENTS; i++) {
      agents.push(
        createAgent({ database: open(), hostname: `bench-agent-${i + 1}`, slots: SLOTS, logSink: memorySink, onExecutionFinished: () => processorWake.wake() }),
      );
    }
    // Agents are polling before the work arrives (started together on a queue of 1,000 commands, their 50 claims
    // at once starve the local server's 10 MariaDB connections).
    await Promise.all(agents.map((a) => a.start()));
    let launched = 0;
    const launchErrors: string[] = [];
    const launchOne = async () => {
      while (launched < IN_FLIGHT) {
        const definitionId = loadIds[launched % loadIds.length]!;
        launched++;
        try {
          await services.operations.launch({ definitionId, launchedBy: 'bench' });
        } catch (error) {
          // Counted and reported, not fatal: the figures below are about the instances that did launch.
          launchErrors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        }
      }
    };
    const launchStarted = performance.now();
    await Promise.all(Array.from({ length: LAUNCH_CONCURRENCY }, launchOne));
    print(
      `launched ${IN_FLIGHT - launchErrors.length} instances through the operations in ${((performance.now() - launchStarted) / 1000).toFixed(1)} s` +
        (launchErrors.length > 0 ? `; ${launchErrors.length} launches failed, the first with ${launchErrors[0]?.slice(0, 200)}` : ''),
    );

    server.resetCounts();
    processorStatements = 0;
    let committed = 0;
    const loadStarted = performance.now();
    const processorLoop = (async () => {
      while (!stop) {
        const invokedAt = performance.now();
        const { total } = await runWhileBusy(processorPass(services), { remainingMs: () => PROCESSOR_TIMEOUT_MS - (performance.now() - invokedAt) });
        committed += total.committed;
        await processorWake.sleep(TICK_MS);
      }
    })();
    loops.push(processorLoop);
    processorWake.wake();

    // 3. The API's list pages while the load runs.
    const apiHandle = open();
    const apiServices = createEngineServices(apiHandle, { ids: createIdGenerator(apiHandle.db, { blockSize: 100 }) });
    await ensureApiClients(new ApiClientRepository(apiHandle.db, apiServices.ids, apiServices.clock), `${CLIENT.name}:${CLIENT.secret}:read`);
    const app = createHttpApp({ services: apiServices, logger: { info: () => {}, warn: () => {}, error: () => {} } });
    const get = async (path: string) => {
      const t = performance.now();
      const res = await app.request(path, { headers: { authorization: AUTH } });
      const body = (await res.json()) as { id: number }[];
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      return { ms: performance.now() - t, body };
    };
    await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, (LOAD_SECONDS * 1000) / 4)));
    const pageTimes: number[] = [];
    let afterId: number | undefined;
    let listed = 0;
    for (;;) {
      const page = await get(`/v1/definitions?limit=${LIST_PAGE}${afterId === undefined ? '' : `&after_id=${afterId}`}`);
      pageTimes.push(page.ms);
      listed += page.body.length;
      if (page.body.length < LIST_PAGE) break;
      afterId = page.body[page.body.length - 1]!.id;
    }
    const all = await get('/v1/definitions');
    const instancesPage = await get(`/v1/definitions/${loadIds[0]}/instances?limit=1000`);

    const remaining = LOAD_SECONDS * 1000 - (performance.now() - loadStarted);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const loadCalls = server.callCount();
    const loadStatements = processorStatements;
    const loadCommitted = committed;
    const unfinished = await mysql.db
      .selectFrom('job_instances')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('finished_at', 'is', null)
      .where('canceled_at', 'is', null)
      .executeTakeFirstOrThrow();
    print(
      `processor under load: ${loadCommitted} steps in ${loadSeconds.toFixed(1)} s = ${(loadCommitted / loadSeconds).toFixed(1)} steps/s; ` +
        `processor Data API calls per step ${(loadStatements / Math.max(1, loadCommitted)).toFixed(2)}, ` +
        `all Data API calls per step ${(loadCalls / Math.max(1, loadCommitted)).toFixed(2)} (agents' claims, heartbeats and idle polls included); ` +
        `${Number(unfinished.n)} instances still in flight at the end`,
    );
    const sortedPages = [...pageTimes].sort((a, b) => a - b);
    print(
      `API list pages under load: GET /v1/definitions?limit=${LIST_PAGE} x ${pageTimes.length} pages (${listed} definitions): ` +
        `slowest ${sortedPages[sortedPages.length - 1]!.toFixed(0)} ms, median ${percentile(sortedPages, 50).toFixed(0)} ms; ` +
        `GET /v1/definitions without limit (${all.body.length}): ${all.ms.toFixed(0)} ms; ` +
        `GET instances?limit=1000 (${instancesPage.body.length}): ${instancesPage.ms.toFixed(0)} ms`,
    );

    // 4. The load ends: what is left in flight is removed, and one instance runs on the idle system.
    stop = true;
    processorWake.wake();
    await processorLoop;
    await mysql.db.deleteFrom('tokens').execute();
    await mysql.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 0 }).where('finished_at', 'is', null).execute();
    await mysql.db.updateTable('job_instances').set({ canceled_at: new Date() }).where('finished_at', 'is', null).where('canceled_at', 'is', null).execute();
    // Fresh agents, as after a scale-in: none holds a command of the load.
    const loadAgents = agents.splice(0);
    await Promise.all(loadAgents.map((a) => a.stop('load over')));
    for (let i = 0; i < AGENTS; i++) {
      agents.push(
        createAgent({ database: open(), hostname: `idle-agent-${i + 1}`, slots: SLOTS, logSink: memorySink, onExecutionFinished: () => processorWake.wake() }),
      );
    }
    await Promise.all(agents.map((a) => a.start()));
    stop = false;
    const idleLoop = (async () => {
      while (!stop) {
        const invokedAt = performance.now();
        await runWhileBusy(processorPass(services), { remainingMs: () => PROCESSOR_TIMEOUT_MS - (performance.now() - invokedAt) });
        await processorWake.sleep(TICK_MS);
      }
    })();
    loops.push(idleLoop);
    const probe = await services.operations.launch({ definitionId: idleProbe!, launchedBy: 'bench idle probe' });
    processorWake.wake();
    const deadline = performance.now() + IDLE_DEADLINE_MS;
    for (;;) {
      const row = await mysql.db.selectFrom('job_instances').select('finished_at').where('id', '=', probe.instance.id).executeTakeFirstOrThrow();
      if (row.finished_at !== null) break;
      if (performance.now() > deadline) {
        print(`the idle probe did not finish within ${IDLE_DEADLINE_MS / 1000} s; its steps so far are measured below`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    stop = true;
    processorWake.wake();
    await idleLoop;
    const histories = await mysql.db
      .selectFrom('execution_histories')
      .select(['started_at', 'finished_at'])
      .where('job_instance_id', '=', probe.instance.id)
      .orderBy('finished_at')
      .execute();
    const gaps: number[] = [];
    for (let i = 1; i < histories.length; i++) {
      const prev = histories[i - 1]!;
      const next = histories[i]!;
      if (next.started_at !== null) gaps.push(fromDbTime(next.started_at).getTime() - fromDbTime(prev.finished_at).getTime());
    }
    const sortedGaps = [...gaps].sort((a, b) => a - b);
    print(
      `single instance on the idle system (${IDLE_STEPS} x execute: true, ${AGENTS} agents polling every 1 s): command exit -> next command start ` +
        `median ${percentile(sortedGaps, 50).toFixed(0)} ms, p95 ${percentile(sortedGaps, 95).toFixed(0)} ms, max ${sortedGaps[sortedGaps.length - 1]?.toFixed(0)} ms`,
    );

    const stats = meter.stats();
    const violations = meter.violations();
    print(
      `largest Data API response seen: ${kib(stats.maxResponseBytes)} (limit ${kib(DATA_API_MAX_RESPONSE_BYTES)}) by: ${stats.largestResponse?.sql.slice(0, 120) ?? '-'}`,
    );
    print(`largest row seen: ${kib(stats.maxRowBytes)} (limit ${kib(DATA_API_MAX_ROW_BYTES)}) by: ${stats.widestRow?.sql.slice(0, 120) ?? '-'}`);
    print(`longest SQL text: ${stats.maxSqlChars} characters (limit ${DATA_API_MAX_SQL_CHARS}); statements measured: ${stats.statements}`);
    print(violations.length === 0 ? 'within the Data API limits: yes' : `OVER THE DATA API LIMITS (${violations.length}):\n  ${violations.join('\n  ')}`);
    print(`wall time: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    if (violations.length > 0) process.exitCode = 1;
  } catch (error) {
    // Printed before the teardown, whose background loops may fail once the server is gone.
    console.error(error);
    process.exitCode = 1;
  } finally {
    stop = true;
    for (const wake of wakes) wake();
    await Promise.allSettled(loops);
    await Promise.all(agents.map((a) => a.stop('bench over')));
    for (const handle of handles) await handle.close();
    meter.client.destroy();
    await server.close();
    await scratch.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
