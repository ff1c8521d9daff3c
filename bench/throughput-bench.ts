/**
 * `npm run bench:throughput`: throughput and latency against issue 18's workloads, and what one step and one
 * scheduler pass cost as the backlog grows. It prints one table.
 * - W1: 50 sequential `execute: true` steps in one job, median ms from one command's exit to the next start;
 * - W2: 1,000 independent `execute: true` jobs on 8 slots, jobs/s from the first launch to the last finish;
 * - W3: 5,000 `noop:` jobs, jobs/s;
 * each in `kuroko dev` (SQLite, one in-process agent with 8 slots) and `kuroko server` on MariaDB with a separate
 * agent process (the `npm run build:agent` bundle, 8 slots).
 * - statements and rows read per step with 10, 1,000 and 10,000 instances in flight on MariaDB (each with a running
 *   command): one command finishes, then the processor passes until its step is written; and an idle pass;
 * - one scheduler pass with nothing due at 100, 1,000 and 10,000 scheduled definitions on MariaDB.
 * Rows read are MariaDB's handler reads (Handler_read_*) on the one connection the measured code uses.
 * KUROKO_BENCH_QUICK=1 runs smaller sizes (W2 200 jobs, W3 1,000, backlogs 10 / 1,000 / 3,000).
 * KUROKO_BENCH_ONLY=W,step,scheduler picks parts; KUROKO_BENCH_MODES=dev,server picks the modes W runs in, and
 * W1, W2 or W3 in KUROKO_BENCH_ONLY one workload.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, type Kysely } from 'kysely';
import { DEFAULT_INTERVALS, startRuntime } from '../cli/runtime/kuroko-runtime';
import { createEngineServices } from '../app/engine-services';
import { fromDbTime } from '../db/column-codec';
import { createDatabase } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { migrateToLatest } from '../db/migrator';
import type { Database } from '../db/schema';
import { buildSelfHostedAgent } from '../scripts/agent-bundle';
import { definitionRow, insertDefinition } from '../test/helpers/engine-fixtures';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { waitFor } from '../test/helpers/wait-for';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const QUICK = process.env.KUROKO_BENCH_QUICK === '1';
const ONLY = new Set((process.env.KUROKO_BENCH_ONLY ?? 'W,step,scheduler').split(','));
const MODES = new Set((process.env.KUROKO_BENCH_MODES ?? 'dev,server').split(','));
const W1_STEPS = 50;
const W2_JOBS = QUICK ? 200 : 1_000;
const W3_JOBS = QUICK ? 1_000 : 5_000;
const SLOTS = 8;
const BACKLOGS = QUICK ? [10, 1_000, 3_000] : [10, 1_000, 10_000];
const DEFINITION_COUNTS = [100, 1_000, 10_000];
const LAUNCH_CONCURRENCY = 8;
const INSERT_BATCH = 500;
const FIRST_CLONE_ID = 10_000_000;
const JOB_TIMEOUT_MS = 600_000;
const quiet = { info: () => {}, warn: () => {}, error: (m: string, d?: unknown) => console.error(m, d) };

const rows: string[][] = [];
const add = (...cells: string[]) => {
  rows.push(cells);
  console.error(`  ${cells.join(' | ')}`);
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

interface Mode {
  name: string;
  start(dir: string): Promise<{ db: Kysely<Database>; launch(definitionId: number): Promise<number>; stop(): Promise<void> }>;
}

function runtimeOn(databaseUrl: string, dir: string, agents: number) {
  return startRuntime({
    databaseUrl,
    host: '127.0.0.1',
    port: 0,
    agents,
    agentSlots: SLOTS,
    logDir: join(dir, 'logs'),
    intervals: DEFAULT_INTERVALS,
    declaredQueues: [],
    notification: { slackWebhookUrl: undefined, webhookSecret: undefined, baseUrl: undefined },
    monitor: {},
    consoleNotifications: false,
    logger: quiet,
  });
}

const devMode: Mode = {
  name: 'kuroko dev (SQLite, in-process agent)',
  async start(dir) {
    const runtime = await runtimeOn(`sqlite:${join(dir, 'kuroko.db')}`, dir, 1);
    return {
      db: runtime.services.handle.db,
      launch: async (definitionId) => (await runtime.services.operations.launch({ definitionId, launchedBy: 'bench' })).instance.id,
      stop: () => runtime.stop(),
    };
  },
};

function serverMode(bundle: string): Mode {
  return {
    name: 'kuroko server + built agent (MariaDB)',
    async start(dir) {
      const scratch = await createMysqlDatabase(MYSQL_URL);
      const runtime = await runtimeOn(scratch.url, dir, 0);
      const agent = spawn(process.execPath, [bundle, '--database-url', scratch.url, '--slots', String(SLOTS), '--log-dir', join(dir, 'agent-logs')], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
      });
      let log = '';
      agent.stderr.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-2000)));
      const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
      const db = runtime.services.handle.db;
      await waitFor(async () => (await db.selectFrom('workers').select('id').execute()).length > 0, { timeoutMs: 30_000, description: `the agent to register (${log})` });
      return {
        db,
        launch: async (definitionId) => (await runtime.services.operations.launch({ definitionId, launchedBy: 'bench' })).instance.id,
        stop: async () => {
          agent.kill('SIGTERM');
          await exited;
          await runtime.stop();
          await scratch.drop();
        },
      };
    },
  };
}

async function waitAllFinished(db: Kysely<Database>): Promise<void> {
  await waitFor(
    async () => {
      const row = await db.selectFrom('job_instances').select((eb) => eb.fn.countAll().as('n')).where('finished_at', 'is', null).executeTakeFirstOrThrow();
      return Number(row.n) === 0;
    },
    { timeoutMs: JOB_TIMEOUT_MS, intervalMs: 100, description: 'every instance to finish' },
  );
  const failed = await db.selectFrom('job_instances').select('id').where((eb) => eb.or([eb('error_at', 'is not', null), eb('canceled_at', 'is not', null)])).execute();
  if (failed.length > 0) throw new Error(`${failed.length} bench instances did not succeed`);
}

async function w1(mode: Mode): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-'));
  const run = await mode.start(dir);
  try {
    await insertDefinition(run.db, 1, 'execute: true\n'.repeat(W1_STEPS));
    const instanceId = await run.launch(1);
    await waitAllFinished(run.db);
    const histories = await run.db.selectFrom('execution_histories').select(['started_at', 'finished_at']).where('job_instance_id', '=', instanceId).execute();
    const runs = histories.map((h) => ({ start: fromDbTime(h.started_at!).getTime(), end: fromDbTime(h.finished_at).getTime() })).sort((a, b) => a.start - b.start);
    return median(runs.slice(1).map((r, i) => r.start - runs[i]!.end));
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * CPU seconds this process's main thread has used (utime + stime of /proc/self/task/<pid>/stat), or undefined off
 * Linux. Unlike wall-clock figures it barely moves with the machine's load: in `kuroko dev` that thread runs the
 * passes, the API and the agent's loop, and is what W1 and W2 wait on.
 */
function mainThreadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
/** USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Adds a row with the main thread's and the whole process's CPU ms per job of `work`. */
async function withCpuPerJob<T>(label: string, mode: Mode, jobs: number, work: () => Promise<T>): Promise<T> {
  const mainBefore = mainThreadCpuSeconds();
  const before = process.cpuUsage();
  const result = await work();
  const mainAfter = mainThreadCpuSeconds();
  const used = process.cpuUsage(before);
  const main = mainBefore === undefined || mainAfter === undefined ? 'n/a' : (((mainAfter - mainBefore) * 1000) / jobs).toFixed(2);
  add(`${label}: CPU ms per job, main thread / whole bench process`, mode.name, `${main} / ${((used.user + used.system) / 1000 / jobs).toFixed(2)}`);
  return result;
}

async function jobsPerSecond(mode: Mode, script: string, jobs: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-'));
  const run = await mode.start(dir);
  try {
    await insertDefinition(run.db, 1, script);
    const started = Date.now();
    let launched = 0;
    const launcher = async () => {
      while (launched < jobs) {
        launched++;
        await run.launch(1);
      }
    };
    await Promise.all(Array.from({ length: LAUNCH_CONCURRENCY }, launcher));
    await waitAllFinished(run.db);
    const last = await run.db.selectFrom('job_instances').select((eb) => eb.fn.max('finished_at').as('at')).executeTakeFirstOrThrow();
    return jobs / ((fromDbTime(last.at as string).getTime() - started) / 1000);
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A MariaDB handle on one connection, counting statements, and its handler reads so far. */
function meteredHandle(url: string) {
  let statements = 0;
  const handle = createDatabase(url, { poolSize: 1, log: () => void statements++ });
  const handlerReads = async (): Promise<number> => {
    const result = await sql<{ Variable_name: string; Value: string }>`SHOW SESSION STATUS LIKE 'Handler_read%'`.execute(handle.db);
    return result.rows.reduce((sum, r) => sum + Number(r.Value), 0);
  };
  /** Statements and rows read by `work`, less what the meter's own SHOW STATUS reads. */
  const measure = async (work: () => Promise<unknown>) => {
    const a = await handlerReads();
    const b = await handlerReads();
    const overhead = b - a;
    const before = statements;
    await work();
    const after = await handlerReads();
    return { statements: statements - before, rowsRead: Math.max(0, after - b - overhead) };
  };
  return { handle, measure };
}

/** Copies of one instance (its instance, token and running execution rows) under new ids (rows as read, hence the casts). */
async function cloneInFlight(db: Kysely<Database>, instanceId: number, copies: number): Promise<void> {
  const instance = await db.selectFrom('job_instances').selectAll().where('id', '=', instanceId).executeTakeFirstOrThrow();
  const token = await db.selectFrom('tokens').selectAll().where('job_instance_id', '=', instanceId).executeTakeFirstOrThrow();
  const execution = await db.selectFrom('executions').selectAll().where('job_instance_id', '=', instanceId).executeTakeFirstOrThrow();
  for (let start = 0; start < copies; start += INSERT_BATCH) {
    const n = Math.min(INSERT_BATCH, copies - start);
    const ids = Array.from({ length: n }, (_, i) => FIRST_CLONE_ID + (start + i) * 10);
    await db.insertInto('job_instances').values(ids.map((id) => ({ ...instance, id })) as never).execute();
    await db.insertInto('tokens').values(ids.map((id) => ({ ...token, id: id + 1, uuid: randomUUID(), job_instance_id: id })) as never).execute();
    await db.insertInto('executions').values(ids.map((id) => ({ ...execution, id: id + 2, uuid: randomUUID(), token_id: id + 1, job_instance_id: id })) as never).execute();
  }
}

async function stepCost(inFlight: number): Promise<{ step: { statements: number; rowsRead: number }; idle: { statements: number; rowsRead: number } }> {
  const scratch = await createMysqlDatabase(MYSQL_URL);
  const setup = createDatabase(scratch.url);
  const metered = meteredHandle(scratch.url);
  try {
    await migrateToLatest(setup.db);
    await insertDefinition(setup.db, 1, 'execute: sleep 1000\nexecute: sleep 1000\n');
    const services = createEngineServices(metered.handle, { ids: createIdGenerator(metered.handle.db, { blockSize: 1000 }) });
    const first = (await services.operations.launch({ definitionId: 1, launchedBy: 'bench' })).instance.id;
    await services.processorPass();
    await services.processorPass();
    const now = new Date();
    await setup.db.updateTable('executions').set({ claimed_at: now, started_at: now, pid: 4242, hostname: 'bench', attempt: 1 }).execute();
    await cloneInFlight(setup.db, first, inFlight - 1);
    await services.processorPass();
    const idle = await metered.measure(() => services.processorPass());
    // The agent's write: one command ends.
    await setup.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 0 }).where('job_instance_id', '=', first).execute();
    const step = await metered.measure(async () => {
      for (let pass = 0; pass < 5; pass++) if ((await services.processorPass()).committed > 0) break;
    });
    return { step, idle };
  } finally {
    await metered.handle.close();
    await setup.close();
    await scratch.drop();
  }
}

async function schedulerCost(definitions: number): Promise<{ ms: number; statements: number; rowsRead: number }> {
  const scratch = await createMysqlDatabase(MYSQL_URL);
  const setup = createDatabase(scratch.url);
  const metered = meteredHandle(scratch.url);
  try {
    await migrateToLatest(setup.db);
    const at = new Date(Date.now() - 24 * 60 * 60 * 1000);
    for (let start = 0; start < definitions; start += INSERT_BATCH) {
      const ids = Array.from({ length: Math.min(INSERT_BATCH, definitions - start) }, (_, i) => 1_000 + (start + i) * 10);
      await setup.db.insertInto('job_definitions').values(ids.map((id) => definitionRow(id, 'execute: true\n', { createdAt: at, preventMulti: 1 }))).execute();
      // Once a year at 00:00 on 1 January: never due while the bench runs (unless on New Year's midnight).
      await setup.db.insertInto('job_schedules').values(ids.map((id) => ({ id: id + 1, job_definition_id: id, cron: '0 0 1 1 *', created_at: at }))).execute();
    }
    const services = createEngineServices(metered.handle, { ids: createIdGenerator(metered.handle.db, { blockSize: 1000 }) });
    await services.schedulerPass();
    const started = performance.now();
    const cost = await metered.measure(() => services.schedulerPass());
    return { ms: performance.now() - started, ...cost };
  } finally {
    await metered.handle.close();
    await setup.close();
    await scratch.drop();
  }
}

const benchStarted = performance.now();
const workload = (name: string) => ONLY.has('W') || ONLY.has(name);
if (['W1', 'W2', 'W3'].some(workload)) {
  const buildDir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-build-'));
  try {
    const modes = [
      ...(MODES.has('dev') ? [devMode] : []),
      ...(MODES.has('server') ? [serverMode(await buildSelfHostedAgent(buildDir))] : []),
    ];
    for (const mode of modes) {
      console.error(`${mode.name}...`);
      if (workload('W1')) {
        const gap = await withCpuPerJob('W1 (per step)', mode, W1_STEPS, () => w1(mode));
        add(`W1 ${W1_STEPS} sequential steps: median ms exit -> next start`, mode.name, gap.toFixed(1));
      }
      if (workload('W2')) {
        const rate = await withCpuPerJob('W2', mode, W2_JOBS, () => jobsPerSecond(mode, 'execute: true\n', W2_JOBS));
        add(`W2 ${W2_JOBS} \`true\` jobs on ${SLOTS} slots: jobs/s`, mode.name, rate.toFixed(1));
      }
      if (workload('W3')) add(`W3 ${W3_JOBS} no-op jobs: jobs/s`, mode.name, (await jobsPerSecond(mode, 'noop:\n', W3_JOBS)).toFixed(1));
    }
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}
if (ONLY.has('step')) {
  for (const n of BACKLOGS) {
    console.error(`step cost at ${n} in flight...`);
    const { step, idle } = await stepCost(n);
    add(`one step, ${n} instances in flight: statements / rows read`, 'processor (MariaDB)', `${step.statements} / ${step.rowsRead}`);
    add(`idle pass, ${n} instances in flight: statements / rows read`, 'processor (MariaDB)', `${idle.statements} / ${idle.rowsRead}`);
  }
}
if (ONLY.has('scheduler')) {
  for (const n of DEFINITION_COUNTS) {
    console.error(`scheduler pass at ${n} definitions...`);
    const cost = await schedulerCost(n);
    add(`scheduler pass, nothing due, ${n} definitions: ms / statements / rows read`, 'scheduler (MariaDB)', `${cost.ms.toFixed(0)} / ${cost.statements} / ${cost.rowsRead}`);
  }
}
const width = (i: number) => Math.max(...rows.map((r) => r[i]!.length), 8);
console.log(`\nbench:throughput${QUICK ? ' (KUROKO_BENCH_QUICK)' : ''}, ${((performance.now() - benchStarted) / 1000).toFixed(0)} s\n`);
console.log(`| ${'measure'.padEnd(width(0))} | ${'mode'.padEnd(width(1))} | ${'value'.padStart(width(2))} |`);
console.log(`|${'-'.repeat(width(0) + 2)}|${'-'.repeat(width(1) + 2)}|${'-'.repeat(width(2) + 1)}:|`);
for (const r of rows) console.log(`| ${r[0]!.padEnd(width(0))} | ${r[1]!.padEnd(width(1))} | ${r[2]!.padStart(width(2))} |`);
process.exit(0);
