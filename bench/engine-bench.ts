/**
 * `npm run bench:engine`: how fast the engine steps tokens on each dialect, and how many SQL statements a noop
 * step, an execute step and a launch cost. Statements are counted at the driver (Kysely's query log: BEGIN and
 * COMMIT included) and, for the Data API, as calls to the local Data API endpoint (each is one HTTPS request
 * in AWS). Run with KUROKO_BENCH_DIALECTS=sqlite,mysql to narrow it; KUROKO_TEST_MYSQL_URL names the MariaDB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { createDatabase, type DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { migrateToLatest } from '../db/migrator';
import { createEngineServices, type EngineServices } from '../app/engine-services';
import { finishExecutionsAsAgent, insertDefinition } from '../test/helpers/engine-fixtures';
import { startDataApiServer, type DataApiServer } from '../test/helpers/data-api-server';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const DIALECTS = (process.env.KUROKO_BENCH_DIALECTS ?? 'sqlite,mysql,data-api').split(',');
const NOOP_INSTANCES = Number(process.env.KUROKO_BENCH_INSTANCES ?? 200);
const NOOPS_PER_SCRIPT = 20;
const FORK_INSTANCES = Math.max(1, Math.floor(NOOP_INSTANCES / 4));
const EXECUTE_INSTANCES = 100;

interface Bench {
  name: string;
  services: EngineServices;
  /** Statements (or Data API calls) since the last reset. */
  count(): number;
  reset(): void;
  close(): Promise<void>;
}

async function openBench(dialect: string): Promise<Bench> {
  let statements = 0;
  const log = () => {
    statements++;
  };
  const cleanups: (() => Promise<void> | void)[] = [];
  let url: string;
  let dataApi: DataApiServer | undefined;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    url = `sqlite:${join(dir, 'bench.db')}`;
  } else {
    const name = `kuroko_bench_${randomBytes(4).toString('hex')}`;
    const admin = await createConnection({ uri: MYSQL_URL });
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
    cleanups.push(async () => {
      const c = await createConnection({ uri: MYSQL_URL });
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    });
    const dbUrl = new URL(MYSQL_URL);
    dbUrl.pathname = `/${name}`;
    if (dialect === 'mysql') {
      url = dbUrl.toString();
    } else {
      const server = await startDataApiServer({ mysqlUrl: dbUrl.toString(), latencyMs: Number(process.env.KUROKO_BENCH_LATENCY_MS ?? 0) });
      dataApi = server;
      cleanups.push(() => server.close());
      url = `data-api://${server.resourceArn}?secret=${encodeURIComponent(server.secretArn)}&database=${name}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
    }
  }
  const handle: DatabaseHandle = createDatabase(url, { log });
  cleanups.push(() => handle.close());
  await migrateToLatest(handle.db);
  const services = createEngineServices(handle, { ids: createIdGenerator(handle.db, { blockSize: 1000 }) });
  return {
    name: dialect,
    services,
    count: () => (dataApi ? dataApi.callCount() : statements),
    reset: () => {
      statements = 0;
      dataApi?.resetCounts();
    },
    close: async () => {
      for (const fn of cleanups.reverse()) await fn();
    },
  };
}

interface Row {
  dialect: string;
  noopStepsPerSecond: number;
  forkStepsPerSecond: number;
  statementsPerNoopStep: number;
  statementsPerExecuteStep: number;
  statementsPerLaunch: number;
}

/** Runs passes until nothing moves; returns committed steps and elapsed ms. */
async function drain(bench: Bench): Promise<{ steps: number; ms: number }> {
  const started = performance.now();
  let steps = 0;
  for (;;) {
    const result = await bench.services.processorPass();
    steps += result.committed;
    const finished = await finishExecutionsAsAgent(bench.services.handle.db);
    if (result.committed === 0 && finished === 0) break;
  }
  return { steps, ms: performance.now() - started };
}

async function launchMany(bench: Bench, definitionId: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await bench.services.operations.launch({ definitionId, launchedBy: 'bench' });
}

async function run(dialect: string): Promise<Row> {
  const bench = await openBench(dialect);
  try {
    const db = bench.services.handle.db;
    await insertDefinition(db, 1, 'noop:\n'.repeat(NOOPS_PER_SCRIPT));
    await insertDefinition(db, 2, 'parallel_fork: 4\n  noop:\n  noop:\nfork:\n  noop:\n  noop:\n  noop:\nnoop:\n');
    await insertDefinition(db, 3, 'execute: work\n');

    // Launch cost.
    bench.reset();
    await launchMany(bench, 1, NOOP_INSTANCES);
    const statementsPerLaunch = bench.count() / NOOP_INSTANCES;

    // Noop-heavy: the passes that take every token through its noops (a pass chains a token's quick steps, up to
    // MAX_STEPS_PER_TOKEN, and writes a batch's chains together: issue 18).
    bench.reset();
    const noop = await drain(bench);
    const statementsPerNoopStep = bench.count() / noop.steps;

    // Fork-heavy.
    await launchMany(bench, 2, FORK_INSTANCES);
    const fork = await drain(bench);

    // Execute: the step that queues the command and the step that reads its result, per command.
    await launchMany(bench, 3, EXECUTE_INSTANCES);
    bench.reset();
    await bench.services.processorPass(); // root -> /0-execute, chained with queueing the commands
    await finishExecutionsAsAgent(db);
    const agentStatements = 1 + EXECUTE_INSTANCES; // the stand-in agent's select and updates, not the engine's
    await bench.services.processorPass(); // read results, finish instances
    const statementsPerExecuteStep = (bench.count() - agentStatements) / (2 * EXECUTE_INSTANCES);

    return {
      dialect,
      noopStepsPerSecond: (noop.steps / noop.ms) * 1000,
      forkStepsPerSecond: (fork.steps / fork.ms) * 1000,
      statementsPerNoopStep,
      statementsPerExecuteStep,
      statementsPerLaunch,
    };
  } finally {
    await bench.close();
  }
}

const rows: Row[] = [];
for (const dialect of DIALECTS) {
  process.stderr.write(`bench:engine ${dialect}...\n`);
  rows.push(await run(dialect));
}
const fmt = (n: number, digits = 1) => n.toFixed(digits);
console.log(`\nengine bench: ${NOOP_INSTANCES} instances x ${NOOPS_PER_SCRIPT} noops, ${FORK_INSTANCES} fork-heavy instances, ${EXECUTE_INSTANCES} execute instances`);
console.log('(statements counted at the driver, BEGIN/COMMIT included; data-api counts every Data API call)\n');
console.log('| dialect  | noop steps/s | fork steps/s | stmts/noop step | stmts/execute step | stmts/launch |');
console.log('|----------|-------------:|-------------:|----------------:|-------------------:|-------------:|');
for (const r of rows) {
  console.log(
    `| ${r.dialect.padEnd(8)} | ${fmt(r.noopStepsPerSecond, 0).padStart(12)} | ${fmt(r.forkStepsPerSecond, 0).padStart(12)} | ${fmt(r.statementsPerNoopStep, 2).padStart(15)} | ${fmt(r.statementsPerExecuteStep, 2).padStart(18)} | ${fmt(r.statementsPerLaunch, 2).padStart(12)} |`,
  );
}
