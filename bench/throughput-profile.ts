/**
 * `npx tsx bench/throughput-profile.ts`: what one job of issue 18's W2 and W3 costs in `kuroko server` with a
 * separate built agent on MariaDB, in load-independent figures: statements and transactions (COMMITs) per job of
 * each process, and CPU-seconds per job of the server, the agent, mariadbd and the agent's commands (/proc/PID/stat).
 *
 * Each process reaches MariaDB through its own counting TCP proxy, which reads the client's command packets
 * (COM_QUERY, sequence 0) and sorts them by their first word; the bench launches (8 in flight, as the API would take
 * them) through a third counting proxy, printed as the launches' statements per job. KUROKO_PROFILE_JOBS (default 300) jobs each
 * for W2, three times that for W3; W1 is one job of 50 steps, counted per step.
 * KUROKO_PROFILE_CPU_DIR: run the server and the agent with `node --cpu-prof` writing there.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngineServices } from '../app/engine-services';
import { DEFAULT_INTERVALS, startRuntime } from '../cli/runtime/kuroko-runtime';
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import { buildSelfHostedAgent } from '../scripts/agent-bundle';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { waitFor } from '../test/helpers/wait-for';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const JOBS = Number(process.env.KUROKO_PROFILE_JOBS ?? 300);
const CPU_DIR = process.env.KUROKO_PROFILE_CPU_DIR;
const COM_QUERY = 3;
/** KUROKO_PROFILE_SHAPES=1 also prints each statement's shape (literals as ?) and how often it ran, per job. */
const SHAPES = process.env.KUROKO_PROFILE_SHAPES === '1';
const CLK_TCK = 100;
/** Counted apart from the statements: writes made outside a transaction, each its own commit. */
const AUTOCOMMIT = '(autocommit)';

/** A proxy to 127.0.0.1:3306 counting the commands its clients send, by first word. */
async function countingProxy(): Promise<{ port: number; counts: Map<string, number>; shapes: Map<string, number>; server: Server }> {
  const counts = new Map<string, number>();
  const shapes = new Map<string, number>();
  const server = createServer((client) => {
    const upstream = connect(3306, '127.0.0.1');
    let pending = Buffer.alloc(0);
    // Whether this connection is inside BEGIN ... COMMIT: a write outside one is a commit of its own (autocommit).
    let inTransaction = false;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUIntLE(0, 3);
        if (pending.length < 4 + length) break;
        const seq = pending[3];
        if (seq === 0 && length > 0 && pending[4] === COM_QUERY) {
          const text = pending.subarray(5, 4 + length).toString('utf8').trim();
          const word = text.split(/\s+/)[0]!.toLowerCase();
          counts.set(word, (counts.get(word) ?? 0) + 1);
          if (word === 'begin' || word === 'start') inTransaction = true;
          else if (word === 'commit' || word === 'rollback') inTransaction = false;
          else if (!inTransaction && ['insert', 'update', 'delete'].includes(word)) counts.set(AUTOCOMMIT, (counts.get(AUTOCOMMIT) ?? 0) + 1);
          if (SHAPES) {
            const shape = text.replace(/'(?:[^'\\]|\\.)*'/g, '?').replace(/\b\d+(\.\d+)?\b/g, '?').replace(/\(\?(, \?)*\)/g, '(?..)').replace(/(\(\?\.\.\), )+/g, '').slice(0, 300);
            shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
          }
        } else if (seq === 0 && length > 0) counts.set(`com_${pending[4]}`, (counts.get(`com_${pending[4]}`) ?? 0) + 1);
        pending = pending.subarray(4 + length);
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, counts, shapes, server };
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU of the children a process waited for (cutime + cstime): for the agent, its commands' shells. */
function childCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

function mariadbPid(): number {
  return Number(execFileSync('pgrep', ['-x', 'mariadbd'], { encoding: 'utf8' }).trim().split('\n')[0]);
}

function start(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [...(CPU_DIR ? ['--cpu-prof', '--cpu-prof-dir', CPU_DIR] : []), ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules'), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

const snapshot = (counts: Map<string, number>) => new Map(counts);
function perJob(after: Map<string, number>, before: Map<string, number>, jobs: number): string {
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const total = [...after].filter(([k]) => k !== AUTOCOMMIT).reduce((sum, [k, v]) => sum + v - (before.get(k) ?? 0), 0);
  const commits = `commits ${((delta('commit') + delta(AUTOCOMMIT)) / jobs).toFixed(2)} (of them autocommit writes ${(delta(AUTOCOMMIT) / jobs).toFixed(2)})`;
  const parts = [...after]
    .filter(([k]) => k !== AUTOCOMMIT)
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v / jobs).toFixed(2)}`);
  return `${(total / jobs).toFixed(2)} (${parts.join(', ')}); ${commits}`;
}

async function workload(name: string, script: string, jobs: number, perUnit = jobs): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-profile-'));
  const scratch = await createMysqlDatabase(MYSQL_URL);
  const handle = createDatabase(scratch.url);
  const serverProxy = await countingProxy();
  const agentProxy = await countingProxy();
  const launchProxy = await countingProxy();
  const via = (port: number) => scratch.url.replace('127.0.0.1:3306', `127.0.0.1:${port}`);
  const children: ChildProcess[] = [];
  let launchHandle: ReturnType<typeof createDatabase> | undefined;
  try {
    await migrateToLatest(handle.db);
    const bundle = await buildSelfHostedAgent(join(dir, 'build'));
    // The server as bench/throughput-bench.ts runs it (no console notifications, quiet logger), in its own process.
    const server = start(['--import', 'tsx', fileURLToPath(import.meta.url), '--server', via(serverProxy.port), dir], {});
    children.push(server);
    const agent = start([bundle, '--slots', '8', '--log-dir', join(dir, 'agent-logs')], { KUROKO_DATABASE_URL: via(agentProxy.port) });
    children.push(agent);
    await waitFor(async () => (await handle.db.selectFrom('workers').select('id').execute()).length > 0, { timeoutMs: 60_000, description: 'the agent to register' });
    await insertDefinition(handle.db, 1, script);
    // Launches through their own counting proxy: what the API's launches cost (group commit, issue 18).
    launchHandle = createDatabase(via(launchProxy.port));
    const services = createEngineServices(launchHandle);
    // Let both settle (the server's tsx start-up) before measuring.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const mariadb = mariadbPid();
    const cpu0 = [cpuSeconds(server.pid!), cpuSeconds(agent.pid!), cpuSeconds(mariadb), childCpuSeconds(agent.pid!)];
    const s0 = snapshot(serverProxy.counts);
    const a0 = snapshot(agentProxy.counts);
    const l0 = snapshot(launchProxy.counts);
    const began = performance.now();
    let launched = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (launched < jobs) {
          launched++;
          await services.operations.launch({ definitionId: 1, launchedBy: 'bench' });
        }
      }),
    );
    await waitFor(
      async () => Number((await handle.db.selectFrom('job_instances').select((eb) => eb.fn.countAll().as('n')).where('finished_at', 'is', null).executeTakeFirstOrThrow()).n) === 0,
      { timeoutMs: 600_000, intervalMs: 50, description: 'all jobs to finish' },
    );
    const seconds = (performance.now() - began) / 1000;
    const cpu1 = [cpuSeconds(server.pid!), cpuSeconds(agent.pid!), cpuSeconds(mariadb), childCpuSeconds(agent.pid!)];
    const ms = (i: number) => ((1000 * (cpu1[i]! - cpu0[i]!)) / perUnit).toFixed(2);
    console.log(`${name}: ${jobs} jobs in ${seconds.toFixed(1)} s (${(jobs / seconds).toFixed(0)} jobs/s, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
    console.log(`  CPU ms per ${perUnit === jobs ? 'job' : 'step'}: server ${ms(0)}, agent ${ms(1)}, mariadbd ${ms(2)} (mariadbd includes other clients); the agent's commands (shells) ${ms(3)}`);
    console.log(`  server statements per ${perUnit === jobs ? 'job' : 'step'}: ${perJob(serverProxy.counts, s0, perUnit)}`);
    console.log(`  agent statements per ${perUnit === jobs ? 'job' : 'step'}:  ${perJob(agentProxy.counts, a0, perUnit)}`);
    console.log(`  launch statements per ${perUnit === jobs ? 'job' : 'step'}: ${perJob(launchProxy.counts, l0, perUnit)} (8 launches in flight)`);
    for (const [who, proxy] of [['server', serverProxy], ['agent', agentProxy], ['launch', launchProxy]] as const) {
      if (!SHAPES) break;
      console.log(`  ${who} statement shapes (per job, whole run):`);
      for (const [shape, n] of [...proxy.shapes].sort((a, b) => b[1] - a[1])) console.log(`    ${(n / perUnit).toFixed(2)}  ${shape}`);
    }
  } finally {
    for (const child of children) await stop(child);
    await launchHandle?.close();
    serverProxy.server.close();
    agentProxy.server.close();
    launchProxy.server.close();
    await handle.close();
    await scratch.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--server') {
  const runtime = await startRuntime({
    databaseUrl: process.argv[3]!,
    host: '127.0.0.1',
    port: 0,
    agents: 0,
    agentSlots: 8,
    logDir: join(process.argv[4]!, 'logs'),
    intervals: DEFAULT_INTERVALS,
    declaredQueues: [],
    notification: { slackWebhookUrl: undefined, webhookSecret: undefined, baseUrl: undefined },
    monitor: {},
    consoleNotifications: false,
    logger: { info: () => {}, warn: () => {}, error: (m: string, d?: unknown) => console.error(m, d) },
  });
  process.once('SIGTERM', () => void runtime.stop().then(() => process.exit(0)));
  await new Promise(() => {});
}

const only = process.env.KUROKO_PROFILE_ONLY ?? 'W1,W2,W3';
if (only.includes('W1')) await workload('W1 50 sequential `execute: true` steps', 'execute: true\n'.repeat(50), 1, 50);
if (only.includes('W2')) await workload('W2 `execute: true`', 'execute: true\n', JOBS);
if (only.includes('W3')) await workload('W3 `noop:`', 'noop:\n', JOBS * 3);
process.exit(0);
