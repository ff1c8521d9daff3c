/**
 * `npm run bench:local`: the local mode end to end (in-process agents, nudged loops, SQLite).
 * - step latency: for a job of 50 sequential `execute: true` steps and one of `parallel_fork: 20` with 5 steps
 *   each, the time between one command's exit and the next command's start in the same token (from the
 *   execution histories the agents record), median and p95;
 * - agent memory: a separate agent process (as on a worker host), resident set size while idle and while running
 *   20 commands at once: the bundle `npm run build:agent` ships (on SQLite and, when KUROKO_TEST_MYSQL_URL or the
 *   default MariaDB answers, on MariaDB), the EC2 agent as the CDK asset ships it (over the Data API test server,
 *   with SSM, CloudWatch Logs and Lambda faked on loopback), and `bin/kuroko.js agent` run from the TypeScript
 *   sources through tsx.
 * KUROKO_BENCH_ONLY=ec2-agent measures only the EC2 agent's memory, KUROKO_BENCH_RUNS times (it varies by run).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DEFAULT_INTERVALS, startRuntime } from '../cli/runtime/kuroko-runtime';
import { fromDbTime } from '../db/column-codec';
import { DEFAULT_QUEUE } from '../core/model';
import type { AgentParameter } from '../app/config/config-schemas';
import { ENV_KEYS } from '../app/config/env-keys';
import { EC2_AGENT_ENV, EC2_AGENT_NODE_FLAGS, EC2_FLEET_FILE, buildSelfHostedAgent, ec2AgentBuildOptions, ec2FleetBuildOptions } from '../scripts/agent-bundle';
import { startDataApiServer } from '../test/helpers/data-api-server';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { startFakeAws } from '../test/helpers/fake-aws-server';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { waitFor } from '../test/helpers/wait-for';
import { errorMessage } from '../core/errors';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const SEQUENTIAL_STEPS = 50;
const FORK_WIDTH = 20;
const FORK_DEPTH = 5;
const PARALLEL_COMMANDS = 20;
const quiet = { info: () => {}, warn: () => {}, error: (m: string, d?: unknown) => console.error(m, d) };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** The local mode's runtime (on a SQLite file in `dir` unless given a database URL), quiet, with in-process agents. */
function benchRuntime(dir: string, agents: number, agentSlots: number, databaseUrl = `sqlite:${join(dir, 'kuroko.db')}`) {
  return startRuntime({
    databaseUrl,
    host: '127.0.0.1',
    port: 0,
    agents,
    agentSlots,
    logDir: join(dir, 'logs'),
    intervals: DEFAULT_INTERVALS,
    declaredQueues: [],
    notification: { slackWebhookUrl: undefined, webhookSecret: undefined, baseUrl: undefined },
    monitor: {},
    consoleNotifications: false,
    logger: quiet,
  });
}

async function stepLatencies(): Promise<{ sequential: number[]; fork: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-local-'));
  const runtime = await benchRuntime(dir, 2, 16);
  try {
    const db = runtime.services.handle.db;
    await insertDefinition(db, 1, 'execute: true\n'.repeat(SEQUENTIAL_STEPS));
    await insertDefinition(db, 2, `parallel_fork: ${FORK_WIDTH}\n${'  execute: true\n'.repeat(FORK_DEPTH)}`);
    const result = { sequential: [] as number[], fork: [] as number[] };
    for (const [definitionId, key] of [[1, 'sequential'], [2, 'fork']] as const) {
      const { instance } = await runtime.services.operations.launch({ definitionId, launchedBy: 'bench' });
      await waitFor(
        async () => {
          const row = await db.selectFrom('job_instances').select(['finished_at', 'error_at', 'canceled_at']).where('id', '=', instance.id).executeTakeFirstOrThrow();
          if (row.error_at || row.canceled_at) throw new Error(`bench instance ${instance.id} did not succeed`);
          return row.finished_at !== null;
        },
        { timeoutMs: 120_000, intervalMs: 50, description: `instance ${instance.id} to finish` },
      );
      const histories = await db
        .selectFrom('execution_histories')
        .select(['token_id', 'started_at', 'finished_at'])
        .where('job_instance_id', '=', instance.id)
        .execute();
      const byToken = new Map<number, { start: number; end: number }[]>();
      for (const h of histories) {
        const list = byToken.get(Number(h.token_id)) ?? [];
        list.push({ start: fromDbTime(h.started_at!).getTime(), end: fromDbTime(h.finished_at).getTime() });
        byToken.set(Number(h.token_id), list);
      }
      for (const runs of byToken.values()) {
        runs.sort((a, b) => a.start - b.start);
        for (let i = 1; i < runs.length; i++) result[key].push(runs[i]!.start - runs[i - 1]!.end);
      }
    }
    return result;
  } finally {
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface AgentMemory {
  idleMb: number;
  busyMb: number;
}

/** How to start one agent process against the runtime's database (its URL) with `slots` slots. */
type AgentLauncher = (databaseUrl: string, dir: string, slots: number) => Promise<{ args: string[]; env: NodeJS.ProcessEnv; cleanup?: () => Promise<void> }>;

/** An agent that takes `kuroko agent`'s options: `args` run by node (the bundle, or bin/kuroko.js agent). */
const kurokoAgent =
  (args: string[]): AgentLauncher =>
  async (databaseUrl, dir, slots) => ({
    args: [...args, '--database-url', databaseUrl, '--slots', String(slots), '--log-dir', join(dir, 'logs')],
    // The bundle is built outside the project, so its native SQLite module comes from the project's node_modules.
    env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
  });

/**
 * The EC2 agent as the CDK asset ships it (agent/main.ts, one file), over the Data API (the test server, on the
 * runtime's MariaDB database), with SSM, CloudWatch Logs and Lambda faked on loopback. Off EC2 the instance
 * metadata service does not answer, so it registers with the host name, as it does when IMDS fails.
 */
const ec2Agent =
  (bundle: string): AgentLauncher =>
  async (databaseUrl, _dir, slots) => {
    const dataApi = await startDataApiServer({ mysqlUrl: databaseUrl });
    const parameter: AgentParameter = {
      stage: 'bench',
      region: 'us-east-1',
      database: { clusterArn: dataApi.resourceArn, secretArn: dataApi.secretArn, databaseName: new URL(databaseUrl).pathname.slice(1), endpoint: dataApi.endpoint },
      queue: DEFAULT_QUEUE,
      slots,
      idleMinutes: 60,
      executionLogGroupName: '/kuroko/bench/executions',
      processorFunctionName: 'kuroko-bench-processor',
      shutdownWhenIdle: false,
    };
    const aws = await startFakeAws(JSON.stringify(parameter));
    return {
      // With the Node.js flags and environment of the systemd unit on instances.
      args: [...EC2_AGENT_NODE_FLAGS, bundle],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        [ENV_KEYS.agentConfigParameter]: '/kuroko/bench/workers/default/agent-config',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'bench',
        AWS_SECRET_ACCESS_KEY: 'bench',
        AWS_ENDPOINT_URL: aws.endpoint,
        ...EC2_AGENT_ENV,
      },
      cleanup: async () => {
        await aws.close();
        await dataApi.close();
      },
    };
  };

/** Starts an agent against a runtime without agents of its own and samples its RSS idle, then running 20 commands. */
async function agentMemory(name: string, launch: AgentLauncher, databaseUrl?: string): Promise<AgentMemory> {
  console.error(`measuring the memory of the ${name}...`);
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-agent-'));
  const url = databaseUrl ?? `sqlite:${join(dir, 'kuroko.db')}`;
  const runtime = await benchRuntime(dir, 0, 1, url);
  const { args, env, cleanup } = await launch(url, dir, PARALLEL_COMMANDS);
  const agent = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let agentLog = '';
  const keepLog = (chunk: string) => (agentLog = (agentLog + chunk).slice(-4000));
  agent.stdout.setEncoding('utf8').on('data', keepLog);
  agent.stderr.setEncoding('utf8').on('data', keepLog);
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  try {
    const db = runtime.services.handle.db;
    await waitFor(async () => (await db.selectFrom('workers').select('id').execute()).length > 0, { timeoutMs: 30_000, description: 'the agent to register' });
    // Let start-up garbage settle, then sample idle.
    const idleSamples: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      idleSamples.push(rssMb(agent.pid!));
    }
    await insertDefinition(db, 1, `parallel_fork: ${PARALLEL_COMMANDS}\n  execute: sleep 3\n`);
    await runtime.services.operations.launch({ definitionId: 1, launchedBy: 'bench' });
    await waitFor(
      async () => (await db.selectFrom('executions').select('id').where('pid', 'is not', null).where('finished_at', 'is', null).execute()).length === PARALLEL_COMMANDS,
      { timeoutMs: 30_000, description: `${PARALLEL_COMMANDS} commands running` },
    );
    const busySamples: number[] = [];
    for (let i = 0; i < 5; i++) {
      busySamples.push(rssMb(agent.pid!));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return { idleMb: Math.max(...idleSamples.slice(-5)), busyMb: Math.max(...busySamples) };
  } catch (error) {
    throw new Error(`${errorMessage(error)}; the agent's log ends:\n${agentLog}`);
  } finally {
    agent.kill('SIGTERM');
    await exited;
    await runtime.stop();
    await cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** KUROKO_BENCH_ONLY=ec2-agent: only the EC2 agent row, KUROKO_BENCH_RUNS times, and no step latency. */
const ONLY_EC2_AGENT = process.env.KUROKO_BENCH_ONLY === 'ec2-agent';
const EC2_AGENT_RUNS = Number(process.env.KUROKO_BENCH_RUNS ?? 1);

async function agentMemoryRows(): Promise<[string, AgentMemory][]> {
  const buildDir = mkdtempSync(join(tmpdir(), 'kuroko-bench-agent-build-'));
  try {
    const bundle = await buildSelfHostedAgent(buildDir);
    const ec2Bundle = join(buildDir, 'ec2-agent.mjs');
    await build(ec2AgentBuildOptions(join(ROOT, 'agent', 'main.ts'), ec2Bundle));
    // The file it imports to terminate its instance, beside it as on an instance (never needed here).
    await build(ec2FleetBuildOptions(join(buildDir, EC2_FLEET_FILE)));
    const measure = async (name: string, launch: AgentLauncher, databaseUrl?: string): Promise<[string, AgentMemory]> => [name, await agentMemory(name, launch, databaseUrl)];
    const rows: [string, AgentMemory][] = [];
    if (!ONLY_EC2_AGENT) rows.push(await measure('npm run build:agent bundle, SQLite', kurokoAgent([bundle])));
    // Each MariaDB measurement gets a database of its own: a runtime leaves its rows behind.
    const onScratchDatabase = async (name: string, launch: AgentLauncher) => {
      const scratch = await createMysqlDatabase(MYSQL_URL);
      try {
        rows.push(await measure(name, launch, scratch.url));
      } finally {
        await scratch.drop();
      }
    };
    const mysqlAnswers = await createMysqlDatabase(MYSQL_URL).then(
      (probe) => probe.drop().then(() => true),
      (error: unknown) => {
        console.error(`agent memory on MariaDB and the Data API skipped: ${MYSQL_URL} does not answer (${errorMessage(error)})`);
        return false;
      },
    );
    if (mysqlAnswers) {
      if (!ONLY_EC2_AGENT) await onScratchDatabase('npm run build:agent bundle, MariaDB', kurokoAgent([bundle]));
      for (let run = 0; run < (ONLY_EC2_AGENT ? EC2_AGENT_RUNS : 1); run++) await onScratchDatabase('EC2 agent (CDK asset), Data API', ec2Agent(ec2Bundle));
    }
    if (!ONLY_EC2_AGENT) rows.push(await measure('bin/kuroko.js agent via tsx, SQLite', kurokoAgent([join(ROOT, 'bin/kuroko.js'), 'agent'])));
    return rows;
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

if (!ONLY_EC2_AGENT) console.error('measuring step latency in the local mode...');
const latencies = ONLY_EC2_AGENT ? undefined : await stepLatencies();
const memory = await agentMemoryRows();
const row = (name: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `| ${name.padEnd(38)} | ${String(sorted.length).padStart(5)} | ${percentile(sorted, 50).toFixed(0).padStart(6)} ms | ${percentile(sorted, 95).toFixed(0).padStart(6)} ms |`;
};
if (latencies) {
  console.log('\nlocal mode bench (SQLite, 2 in-process agents, nudged loops)\n');
  console.log('| step latency: command exit -> next command start | steps | median | p95 |');
  console.log('|----------------------------------------|------:|----------:|----------:|');
  console.log(row(`${SEQUENTIAL_STEPS} sequential \`execute: true\``, latencies.sequential));
  console.log(row(`parallel_fork: ${FORK_WIDTH} x ${FORK_DEPTH} steps`, latencies.fork));
}
console.log(`\n| agent process (${PARALLEL_COMMANDS} slots)                  | idle RSS | RSS running ${PARALLEL_COMMANDS} commands |`);
console.log('|-------------------------------------------|---------:|------------------------:|');
for (const [name, m] of memory) console.log(`| ${name.padEnd(41)} | ${m.idleMb.toFixed(1).padStart(5)} MB | ${m.busyMb.toFixed(1).padStart(20)} MB |`);
if (latencies) console.log('(Kuroko2 needs 1-3 s per step: a 1 s processor tick plus a 1-2 s executor poll.)');
