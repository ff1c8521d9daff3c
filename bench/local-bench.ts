/**
 * `npm run bench:local`: the local mode end to end (in-process agents, nudged loops, SQLite).
 * - step latency: for a job of 50 sequential `execute: true` steps and one of `parallel_fork: 20` with 5 steps
 *   each, the time between one command's exit and the next command's start in the same token (from the
 *   execution histories the agents record), median and p95;
 * - agent memory: a separate agent process (as on a worker host), resident set size while idle and while running
 *   20 commands at once: the bundle `npm run build:agent` ships (on SQLite and, when KUROKO_TEST_MYSQL_URL or the
 *   default MariaDB answers, on MariaDB), and `bin/kuroko.js agent` run from the TypeScript sources through tsx.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import { DEFAULT_INTERVALS, startRuntime } from '../cli/runtime/kuroko-runtime';
import { fromDbTime } from '../db/column-codec';
import { buildSelfHostedAgent } from '../scripts/agent-bundle';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { waitFor } from '../test/helpers/wait-for';

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

/** A fresh MariaDB database for the agent, or undefined (with the reason printed) when none answers. */
async function scratchMysqlDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const name = `kuroko_bench_agent_${randomBytes(4).toString('hex')}`;
  try {
    const admin = await createConnection({ uri: MYSQL_URL });
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
  } catch (error) {
    console.error(`agent memory on MariaDB skipped: ${MYSQL_URL} does not answer (${error instanceof Error ? error.message : String(error)})`);
    return undefined;
  }
  const url = new URL(MYSQL_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const admin = await createConnection({ uri: MYSQL_URL });
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  };
}

interface AgentMemory {
  idleMb: number;
  busyMb: number;
}

/** Runs `command` (an agent taking the `kuroko agent` options) against a runtime without agents and samples its RSS. */
async function agentMemory(command: string[], databaseUrl?: string): Promise<AgentMemory> {
  console.error(`measuring the memory of ${command.map((part) => part.replace(ROOT, '')).join(' ')} on ${databaseUrl ? 'MariaDB' : 'SQLite'}...`);
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-agent-'));
  const runtime = await benchRuntime(dir, 0, 1, databaseUrl);
  const url = databaseUrl ?? `sqlite:${join(dir, 'kuroko.db')}`;
  const agentArgs = ['--database-url', url, '--slots', String(PARALLEL_COMMANDS), '--log-dir', join(dir, 'logs')];
  // The bundle is built outside the project, so its native SQLite module comes from the project's node_modules.
  const env = { ...process.env, NODE_PATH: join(ROOT, 'node_modules') };
  const agent = spawn(process.execPath, [...command, ...agentArgs], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let agentLog = '';
  agent.stderr.setEncoding('utf8').on('data', (chunk: string) => (agentLog = (agentLog + chunk).slice(-4000)));
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
    throw new Error(`${error instanceof Error ? error.message : String(error)}; the agent's log ends:\n${agentLog}`);
  } finally {
    agent.kill('SIGTERM');
    await exited;
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function agentMemoryRows(): Promise<[string, AgentMemory][]> {
  const buildDir = mkdtempSync(join(tmpdir(), 'kuroko-bench-agent-build-'));
  try {
    const bundle = await buildSelfHostedAgent(buildDir);
    const rows: [string, AgentMemory][] = [['npm run build:agent bundle, SQLite', await agentMemory([bundle])]];
    const mysql = await scratchMysqlDatabase();
    if (mysql) {
      try {
        rows.push(['npm run build:agent bundle, MariaDB', await agentMemory([bundle], mysql.url)]);
      } finally {
        await mysql.drop();
      }
    }
    rows.push(['bin/kuroko.js agent via tsx, SQLite', await agentMemory([join(ROOT, 'bin/kuroko.js'), 'agent'])]);
    return rows;
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

console.error('measuring step latency in the local mode...');
const latencies = await stepLatencies();
const memory = await agentMemoryRows();
const row = (name: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `| ${name.padEnd(38)} | ${String(sorted.length).padStart(5)} | ${percentile(sorted, 50).toFixed(0).padStart(6)} ms | ${percentile(sorted, 95).toFixed(0).padStart(6)} ms |`;
};
console.log('\nlocal mode bench (SQLite, 2 in-process agents, nudged loops)\n');
console.log('| step latency: command exit -> next command start | steps | median | p95 |');
console.log('|----------------------------------------|------:|----------:|----------:|');
console.log(row(`${SEQUENTIAL_STEPS} sequential \`execute: true\``, latencies.sequential));
console.log(row(`parallel_fork: ${FORK_WIDTH} x ${FORK_DEPTH} steps`, latencies.fork));
console.log(`\n| agent process (${PARALLEL_COMMANDS} slots)                  | idle RSS | RSS running ${PARALLEL_COMMANDS} commands |`);
console.log('|-------------------------------------------|---------:|------------------------:|');
for (const [name, m] of memory) console.log(`| ${name.padEnd(41)} | ${m.idleMb.toFixed(1).padStart(5)} MB | ${m.busyMb.toFixed(1).padStart(20)} MB |`);
console.log('(Kuroko2 needs 1-3 s per step: a 1 s processor tick plus a 1-2 s executor poll.)');
