/**
 * `npm run bench:throughput`: throughput and latency against issue 18's workloads, and what one step and one
 * scheduler pass cost as the backlog grows. It prints one table.
 * - W1: 50 sequential `execute: true` steps in one job, median ms from one command's exit to the next start;
 * - W2: 1,000 independent `execute: true` jobs on 8 slots, jobs/s from the first launch to the last finish;
 * - W3: 5,000 `noop:` jobs, jobs/s;
 * each in `kuroko dev` (SQLite, one in-process agent with 8 slots), `kuroko server` on MariaDB with a separate
 * agent process (the `npm run build:agent` bundle, 8 slots), `kuroko server` on MariaDB with one in-process agent
 * (`--agents 1`, 8 slots), and the AWS mode (bench/lambda-mode.ts: the Lambda handlers and an EC2 agent process with
 * 8 slots over the Data API stand-in at KUROKO_BENCH_LATENCY_MS, 25 by default, per call; SQS and Lambda's Invoke on
 * loopback). In the AWS mode W2 and W3 run 100 and 300 jobs (launches pay the Data API too), W1 also prints the
 * Data API calls per step by caller, and an idle window after W1 the calls made while nothing is in flight.
 * - statements and rows read per step with 10, 1,000 and 10,000 instances in flight on MariaDB (each with a running
 *   command): one command finishes, then the processor passes until its step is written; and an idle pass;
 * - one scheduler pass with nothing due at 100, 1,000 and 10,000 scheduled definitions on MariaDB.
 * Rows read are MariaDB's handler reads (Handler_read_*) on the one connection the measured code uses.
 * KUROKO_BENCH_W1_TIMELINE=1 (AWS mode) also prints the timeline of W1's median step: every Data API call (by
 * function environment, agent or api), SQS and Lambda call and invocation from one command's exit to the next start.
 * KUROKO_BENCH_QUICK=1 runs smaller sizes (W2 200 jobs, W3 1,000, backlogs 10 / 1,000 / 3,000).
 * KUROKO_BENCH_ONLY=W,step,scheduler picks parts (W1, W2 or W3 one workload); KUROKO_BENCH_MODES=dev,server,AWS
 * picks the modes W runs in (those whose name contains one of them; all by default).
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
import { callsBetween, openLambdaWorld, perJob, quietStdout, type CallCounts, type LambdaWorld, type TimelineEntry } from './lambda-mode';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const QUICK = process.env.KUROKO_BENCH_QUICK === '1';
const ONLY = new Set((process.env.KUROKO_BENCH_ONLY ?? 'W,step,scheduler').split(','));
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
const LATENCY_MS = Number(process.env.KUROKO_BENCH_LATENCY_MS ?? 25);
const W1_TIMELINE = process.env.KUROKO_BENCH_W1_TIMELINE === '1';
const LAMBDA_W2_JOBS = 100;
const LAMBDA_W3_JOBS = 300;
/** After W1 in the AWS mode: a pause for the last invocations and the agent's hot polls to end, then the window. */
const IDLE_SETTLE_MS = 5_000;
const IDLE_WINDOW_MS = 20_000;
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

interface Run {
  db: Kysely<Database>;
  launch(definitionId: number): Promise<number>;
  stop(): Promise<void>;
  /** The definition to use (modes that share one database across runs); 1 otherwise. */
  definitionId?: number;
  /** Data API calls so far, by caller (the AWS mode). */
  calls?: () => CallCounts;
  settled?: () => Promise<void>;
  /** Delivers the minute's scheduled events now and waits for the runs (the AWS mode). */
  tick?: () => Promise<void>;
}

interface Mode {
  name: string;
  /** Jobs for W2 and W3 when not the default. */
  sizes?: { w2: number; w3: number };
  start(dir: string): Promise<Run>;
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

const serverInProcessMode: Mode = {
  name: 'kuroko server --agents 1 (MariaDB, in-process agent)',
  async start(dir) {
    const scratch = await createMysqlDatabase(MYSQL_URL);
    const runtime = await runtimeOn(scratch.url, dir, 1);
    return {
      db: runtime.services.handle.db,
      launch: async (definitionId) => (await runtime.services.operations.launch({ definitionId, launchedBy: 'bench' })).instance.id,
      stop: async () => {
        await runtime.stop();
        await scratch.drop();
      },
    };
  },
};

function lambdaMode(world: () => Promise<LambdaWorld>): Mode {
  return {
    name: `AWS: Lambda functions + EC2 agent, Data API ${LATENCY_MS} ms/call${process.env.KUROKO_BENCH_PROCESSOR_CONCURRENCY ? `, processor reserved ${process.env.KUROKO_BENCH_PROCESSOR_CONCURRENCY}` : ''}`,
    sizes: { w2: LAMBDA_W2_JOBS, w3: LAMBDA_W3_JOBS },
    start: async () => (await world()).start(),
  };
}

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


interface W1Result {
  medianMs: number;
  /** Data API calls of the whole workflow, by caller (the AWS mode). */
  calls?: CallCounts;
  /** Data API calls of the first tick after the workflow, the agent still up (the AWS mode). */
  firstTick?: CallCounts;
  /** Data API calls in IDLE_WINDOW_MS with nothing in flight after that tick, one more tick in it, the agent up. */
  idle?: CallCounts;
  /** The first tick once the agent left (the deployed agent's idle timeout): the scheduler puts the engine to sleep. */
  fallAsleep?: CallCounts;
  /** IDLE_WINDOW_MS after that, one more tick in it: the engine asleep. */
  asleep?: CallCounts;
  /** Each step's exit and the next start (wall-clock ms), for the timeline. */
  gaps?: { exit: number; next: number }[];
  /** Where each idle measure began and ended (wall-clock ms), for the timeline. */
  idleWindows?: { label: string; from: number; to: number }[];
}

async function w1(mode: Mode): Promise<W1Result> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-'));
  const run = await mode.start(dir);
  try {
    const definitionId = run.definitionId ?? 1;
    await insertDefinition(run.db, definitionId, 'execute: true\n'.repeat(W1_STEPS));
    const before = run.calls?.();
    const instanceId = await run.launch(definitionId);
    await waitAllFinished(run.db);
    await run.settled?.();
    const histories = await run.db.selectFrom('execution_histories').select(['started_at', 'finished_at']).where('job_instance_id', '=', instanceId).execute();
    const runs = histories.map((h) => ({ start: fromDbTime(h.started_at!).getTime(), end: fromDbTime(h.finished_at).getTime() })).sort((a, b) => a.start - b.start);
    const medianMs = median(runs.slice(1).map((r, i) => r.start - runs[i]!.end));
    const gaps = runs.slice(1).map((r, i) => ({ exit: runs[i]!.end, next: r.start }));
    if (before === undefined || run.calls === undefined) return { medianMs };
    const calls = callsBetween(before, run.calls());
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    await run.settled?.();
    // With idle sleep (as deployed), the engine stays awake while an agent heart-beats (core/services/sleep-plan.ts):
    // the deployed agent leaves after its idle minutes (10 by default). First the minutes before that, then after.
    const windows: { label: string; from: number; to: number }[] = [];
    const counts = run.calls;
    const measure = async (label: string, work: () => Promise<void>): Promise<CallCounts> => {
      const from = counts();
      const at = wallNow();
      await work();
      windows.push({ label, from: at, to: wallNow() });
      return callsBetween(from, counts());
    };
    const idleWindow = async () => {
      await run.tick?.();
      await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
    };
    const firstTick = await measure('first tick after W1, agent up', async () => run.tick?.());
    const idle = await measure(`idle ${IDLE_WINDOW_MS / 1000} s, agent up`, idleWindow);
    await run.stop();
    const fallAsleep = await measure('first tick once the agent left', async () => run.tick?.());
    const asleep = await measure(`idle ${IDLE_WINDOW_MS / 1000} s, agent gone`, idleWindow);
    return { medianMs, calls, firstTick, idle, fallAsleep, asleep, gaps, idleWindows: windows };
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const wallNow = () => performance.timeOrigin + performance.now();

/** The Data API calls that started in [from, to), by caller (function environments, agent), and their SQL shapes. */
function printCallsIn(label: string, entries: readonly TimelineEntry[], from: number, to: number): void {
  const calls = entries.filter((e) => e.kind === 'data-api' && e.startedAt >= from && e.startedAt < to);
  const byWho = new Map<string, string[]>();
  for (const e of calls) byWho.set(e.who, [...(byWho.get(e.who) ?? []), sqlShape(e.what)]);
  console.error(`  ${label}: ${calls.length} Data API calls`);
  for (const [who, shapes] of byWho) console.error(`    ${who} ${shapes.length}: ${shapes.map((x) => x.slice(0, 60)).join(' | ')}`);
}

/** Where a Data API call's SQL comes from, in a few words (the timeline's reader need not parse SQL). */
function sqlShape(what: string): string {
  const text = what.replace(/\s+/g, ' ');
  const verb = /^(select|update|insert into|delete from|BeginTransaction|CommitTransaction|RollbackTransaction)/i.exec(text)?.[1] ?? text.slice(0, 12);
  const table = /(?:from|update|into) `?(\w+)`?/i.exec(text)?.[1] ?? '';
  const where = /where (.{0,70})/i.exec(text)?.[1] ?? '';
  return `${verb} ${table}${where ? ` where ${where}` : ''}`.slice(0, 110);
}

/**
 * Prints what ran from the exit of W1's median step to the next start: each entry's start and end in ms after the
 * exit, who made it and what. Then the Data API calls that started in every gap, by caller, averaged over the steps.
 */
function printTimeline(entries: readonly TimelineEntry[], gaps: readonly { exit: number; next: number }[]): void {
  const sorted = [...gaps].sort((a, b) => a.next - a.exit - (b.next - b.exit));
  const gap = sorted[Math.floor(sorted.length / 2)];
  if (gap === undefined) return;
  const slack = 5;
  console.error(`\n  W1 timeline of the median step (${(gap.next - gap.exit).toFixed(0)} ms): ms after the command's exit`);
  for (const e of entries) {
    if (e.endedAt < gap.exit - slack || e.startedAt > gap.next + slack) continue;
    // Long polls that began long before: only their answer matters.
    const from = e.startedAt < gap.exit - 1_000 ? '   ...' : (e.startedAt - gap.exit).toFixed(0).padStart(6);
    const shape = e.kind === 'data-api' ? sqlShape(e.what) : e.what;
    console.error(`  ${from} ${(e.endedAt - gap.exit).toFixed(0).padStart(6)}  ${e.who.padEnd(12)} ${shape}`);
  }
  const byWho = new Map<string, number>();
  for (const g of gaps) {
    for (const e of entries) {
      if (e.kind !== 'data-api' || e.startedAt < g.exit || e.startedAt > g.next) continue;
      const who = e.who.replace(/-\d+$/, '');
      byWho.set(who, (byWho.get(who) ?? 0) + 1);
    }
  }
  const average = [...byWho].map(([who, n]) => `${who} ${(n / gaps.length).toFixed(1)}`).join(', ');
  console.error(`  Data API calls started between an exit and the next start, per step: ${average}\n`);
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

async function jobsPerSecond(mode: Mode, script: string, jobs: number): Promise<{ rate: number; calls?: CallCounts }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-'));
  const run = await mode.start(dir);
  try {
    const definitionId = run.definitionId ?? 1;
    await insertDefinition(run.db, definitionId, script);
    const before = run.calls?.();
    const started = Date.now();
    let launched = 0;
    const launcher = async () => {
      while (launched < jobs) {
        launched++;
        await run.launch(definitionId);
      }
    };
    await Promise.all(Array.from({ length: LAUNCH_CONCURRENCY }, launcher));
    await waitAllFinished(run.db);
    const last = await run.db.selectFrom('job_instances').select((eb) => eb.fn.max('finished_at').as('at')).executeTakeFirstOrThrow();
    const rate = jobs / ((fromDbTime(last.at as string).getTime() - started) / 1000);
    return before && run.calls ? { rate, calls: callsBetween(before, run.calls()) } : { rate };
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

/** KUROKO_BENCH_MODES=dev,server,AWS: modes whose name contains one of these (all by default). */
const MODES = (process.env.KUROKO_BENCH_MODES ?? '').split(',').filter((m) => m !== '');
let world: Promise<LambdaWorld> | undefined;
const openWorld = async (): Promise<LambdaWorld> => {
  quietStdout();
  const reserved = Number(process.env.KUROKO_BENCH_PROCESSOR_CONCURRENCY ?? 0);
  return openLambdaWorld({
    mysqlUrl: MYSQL_URL,
    latencyMs: LATENCY_MS,
    awsLatencyMs: LATENCY_MS,
    slots: SLOTS,
    root: ROOT,
    timeline: W1_TIMELINE,
    ...(reserved > 0 ? { processorConcurrency: reserved } : {}),
  });
};

const benchStarted = performance.now();
const workload = (name: string) => ONLY.has('W') || ONLY.has(name);
if (['W1', 'W2', 'W3'].some(workload)) {
  const buildDir = mkdtempSync(join(tmpdir(), 'kuroko-bench-tp-build-'));
  try {
    const modes = [devMode, serverMode(await buildSelfHostedAgent(buildDir)), serverInProcessMode, lambdaMode(() => (world ??= openWorld()))];
    for (const mode of modes.filter((m) => MODES.length === 0 || MODES.some((k) => m.name.includes(k)))) {
      console.error(`${mode.name}...`);
      if (workload('W1')) {
        const first = await withCpuPerJob('W1 (per step)', mode, W1_STEPS, () => w1(mode));
        add(`W1 ${W1_STEPS} sequential steps: median ms exit -> next start`, mode.name, first.medianMs.toFixed(1));
        if (first.calls) add(`W1: Data API calls per step, functions / agent / launch`, mode.name, perJob(first.calls, W1_STEPS));
        if (W1_TIMELINE && world && first.gaps) printTimeline((await world).timeline(), first.gaps);
        if (W1_TIMELINE && world && first.idleWindows) {
          for (const { label, from, to } of first.idleWindows) printCallsIn(label, (await world).timeline(), from, to);
        }
        const idleRows: [string, CallCounts | undefined][] = [
          ['first tick after W1, agent up (awake: a worker heart-beats)', first.firstTick],
          [`idle ${IDLE_WINDOW_MS / 1000} s after it, agent up`, first.idle],
          ['first tick once the agent left (the engine goes to sleep)', first.fallAsleep],
          [`idle ${IDLE_WINDOW_MS / 1000} s after it, asleep`, first.asleep],
        ];
        for (const [label, c] of idleRows) if (c) add(`${label}: Data API calls, functions / agent (minute ticks in it)`, mode.name, `${c.functions} / ${c.agent} (${c.ticks})`);
      }
      const w2Jobs = mode.sizes?.w2 ?? W2_JOBS;
      const w3Jobs = mode.sizes?.w3 ?? W3_JOBS;
      for (const [name, label, script, jobs] of [['W2', `W2 ${w2Jobs} \`true\` jobs on ${SLOTS} slots`, 'execute: true\n', w2Jobs], ['W3', `W3 ${w3Jobs} no-op jobs`, 'noop:\n', w3Jobs]] as const) {
        if (!workload(name)) continue;
        const { rate, calls } = await withCpuPerJob(name, mode, jobs, () => jobsPerSecond(mode, script, jobs));
        add(`${label}: jobs/s`, mode.name, rate.toFixed(1));
        if (calls) add(`${label}: Data API calls per job, functions / agent / launch`, mode.name, perJob(calls, jobs));
      }
    }
    if (world) {
      const opened = await world;
      const made = opened.environments();
      const counts = Object.entries(opened.invocations()).map(([name, n]) => `${name.replace('kuroko-bench-', '')} ${n}${made[name] ? ` (${made[name]} env)` : ''}`);
      add('AWS mode: invocations (execution environments) by function', 'all AWS runs above', counts.join(', '));
    }
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
    if (world) await (await world).close();
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
