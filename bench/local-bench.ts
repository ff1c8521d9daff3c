/**
 * `npm run bench:local`: the local mode end to end (in-process agents, nudged loops, SQLite).
 * - step latency: for a job of 50 sequential `execute: true` steps and one of `parallel_fork: 20` with 5 steps
 *   each, the time between one command's exit and the next command's start in the same token (from the
 *   execution histories the agents record), median and p95;
 * - agent memory: a separate `kuroko agent` process (as on a worker host), resident set size while idle and
 *   while running 20 commands at once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_INTERVALS, startRuntime } from '../cli/runtime/kuroko-runtime';
import { fromDbTime } from '../db/column-codec';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { waitFor } from '../test/helpers/wait-for';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
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

/** The local mode's runtime on a SQLite file in `dir`, quiet, with the given in-process agents. */
function benchRuntime(dir: string, agents: number, agentSlots: number) {
  return startRuntime({
    databaseUrl: `sqlite:${join(dir, 'kuroko.db')}`,
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

/** The agent as a single esbuild bundle (how a worker host would run it), in a temporary folder. */
async function bundleAgent(dir: string): Promise<string> {
  const { build } = await import('esbuild');
  const entry = join(dir, 'agent-entry.ts');
  writeFileSync(
    entry,
    `import { runAgentCommand } from ${JSON.stringify(join(ROOT, 'cli/agent-command.ts'))};\n` +
      'const io = { stdout: (t: string) => void process.stdout.write(t), stderr: (t: string) => void process.stderr.write(t) };\n' +
      'process.exitCode = await runAgentCommand(process.argv.slice(2), io);\n',
  );
  const outfile = join(dir, 'agent.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    external: ['better-sqlite3'],
    outfile,
    banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" },
    logLevel: 'error',
  });
  return outfile;
}

async function agentMemory(command: 'tsx' | 'bundle'): Promise<{ idleMb: number; busyMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-agent-'));
  const url = `sqlite:${join(dir, 'kuroko.db')}`;
  const runtime = await benchRuntime(dir, 0, 1);
  const agentArgs = ['--database-url', url, '--slots', String(PARALLEL_COMMANDS), '--log-dir', join(dir, 'logs')];
  const agent =
    command === 'tsx'
      ? spawn(process.execPath, [join(ROOT, 'bin/kuroko.js'), 'agent', ...agentArgs], { stdio: 'ignore' })
      : spawn(process.execPath, [await bundleAgent(dir), ...agentArgs], { stdio: 'ignore', env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') } });
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
  } finally {
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const latencies = await stepLatencies();
const viaTsx = await agentMemory('tsx');
const bundled = await agentMemory('bundle');
const row = (name: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `| ${name.padEnd(38)} | ${String(sorted.length).padStart(5)} | ${percentile(sorted, 50).toFixed(0).padStart(6)} ms | ${percentile(sorted, 95).toFixed(0).padStart(6)} ms |`;
};
console.log('\nlocal mode bench (SQLite, 2 in-process agents, nudged loops)\n');
console.log('| step latency: command exit -> next command start | steps | median | p95 |');
console.log('|----------------------------------------|------:|----------:|----------:|');
console.log(row(`${SEQUENTIAL_STEPS} sequential \`execute: true\``, latencies.sequential));
console.log(row(`parallel_fork: ${FORK_WIDTH} x ${FORK_DEPTH} steps`, latencies.fork));
console.log('\n| kuroko agent, separate process         | idle RSS | RSS running 20 commands |');
console.log('|----------------------------------------|---------:|------------------------:|');
console.log(`| bin/kuroko.js agent (TypeScript via tsx) | ${viaTsx.idleMb.toFixed(1).padStart(5)} MB | ${viaTsx.busyMb.toFixed(1).padStart(20)} MB |`);
console.log(`| esbuild bundle of the agent command       | ${bundled.idleMb.toFixed(1).padStart(5)} MB | ${bundled.busyMb.toFixed(1).padStart(20)} MB |`);
console.log('(Kuroko2 needs 1-3 s per step: a 1 s processor tick plus a 1-2 s executor poll.)');
