/**
 * Self-hosted scenarios: `kuroko server` plus separate `kuroko agent` processes (each its own host name and log
 * folder) on the harness's MariaDB.
 * 1. MariaDB stopped and restarted mid-run, then KILL of every client connection, twice;
 * 4. one agent cut off from the database for longer than its lease (and than the worker-lost threshold) while its
 *    command runs, then reconnecting; another agent of the same queue is there to run the retry;
 * 5. agents whose clocks are minutes ahead of and behind the database and the engine;
 * 6. an agent whose log folder fails (writes answer ENOSPC, then it is removed) and an EC2 agent whose CloudWatch
 *    Logs calls fail (throttled, 5xx) while their commands print.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';
import type { Tracked } from './processes';
import { poll } from './processes';
import { startProxy } from './proxy';
import type { ScenarioRow } from './report';
import { closeStage, conclude, openStage, randomBetween, type Harness, type Stage } from './scenario';
import { agentLogDir, httpControl, startAgent, startEc2Agent, startServer, type AgentSpec, type ApiProcess, type Ec2Agent } from './topology';
import { DEF, launchMains, launchWithKey, seedDefinitions, settle, type Control } from './workload';

const MAINS = 6;

interface SelfHosted {
  stage: Stage;
  databaseUrl: string;
  handle: DatabaseHandle;
  server: ApiProcess;
  control: Control;
  agents: Tracked[];
}

async function openSelfHosted(
  harness: Harness,
  name: string,
  base: number,
  options: { longSeconds?: number; longQueue?: string; longMode?: 'sleep' | 'linger'; serverEnv?: Record<string, string> } = {},
): Promise<SelfHosted> {
  const stage = await openStage(harness, name, base);
  const databaseUrl = await harness.mariadb.createDatabase(`chaos_${base}`);
  const handle = createDatabase(databaseUrl);
  await migrateToLatest(handle.db);
  await seedDefinitions(handle.db, stage.w, { webhookUrl: stage.webhook.url, cron: true, ...options });
  const server = await startServer(databaseUrl, options.serverEnv);
  return { stage, databaseUrl, handle, server, control: httpControl(() => server.url), agents: [] };
}

function agentSpec(s: SelfHosted, hostname: string, extra: Partial<AgentSpec> = {}): AgentSpec {
  const logDir = agentLogDir(s.stage.dir, hostname);
  mkdirSync(logDir, { recursive: true });
  return { hostname, databaseUrl: s.databaseUrl, logDir, onRestart: s.stage.onAgentRestart, ...extra };
}

async function workersUp(s: SelfHosted, n: number): Promise<void> {
  const up = await poll(async () => {
    const rows = await s.handle.db.selectFrom('workers').select('id').execute();
    return rows.length >= n;
  }, 60_000);
  if (!up) throw new Error(`${n} agents did not register: ${s.agents.map((a) => a.output().slice(-300)).join('\n')}`);
}

async function closeSelfHosted(harness: Harness, s: SelfHosted | undefined): Promise<void> {
  if (s === undefined) return;
  await Promise.all([s.server.process.stop('SIGTERM'), ...s.agents.map((a) => a.stop('SIGTERM'))]);
  await s.handle.close().catch(() => undefined);
  await closeStage(s.stage);
}

export async function mariadbScenario(harness: Harness): Promise<ScenarioRow> {
  let s: SelfHosted | undefined;
  try {
    s = await openSelfHosted(harness, '1 MariaDB restarted, connections killed', 1000);
    const self = s;
    s.agents.push(startAgent(agentSpec(s, 'chaos-1a')), startAgent(agentSpec(s, 'chaos-1b')));
    await workersUp(s, 2);
    const launches = launchMains(s.control, s.stage.w, 's1', MAINS, 24_000);
    await delay(randomBetween(4_000, 7_000));
    await harness.mariadb.stop('SIGTERM');
    harness.log('1: MariaDB stopped');
    await delay(8_000);
    await harness.mariadb.start();
    harness.log('1: MariaDB started again');
    for (let i = 0; i < 3; i++) {
      await delay(randomBetween(2_000, 5_000));
      const killed = await harness.mariadb.killClients();
      harness.log(`1: killed ${killed} client connections`);
    }
    await launches;
    return await conclude(harness, s.stage, self.handle.db, s.control);
  } finally {
    await closeSelfHosted(harness, s);
  }
}

/** Seconds the cut-off agent stays unreachable: more than its lease (60 s) and the worker-lost threshold (75 s). */
const PARTITION_MS = 95_000;

export async function cutOffAgentScenario(harness: Harness): Promise<ScenarioRow> {
  let s: SelfHosted | undefined;
  const proxy = await startProxy(harness.mariadb.port);
  try {
    s = await openSelfHosted(harness, '4 agent cut off longer than its lease', 4000, { longSeconds: 150, longQueue: 'cut', longMode: 'linger' });
    const self = s;
    s.agents.push(startAgent(agentSpec(s, 'chaos-4a')));
    s.agents.push(startAgent(agentSpec(s, 'chaos-4cut', { databaseUrl: s.databaseUrl.replace(`:${harness.mariadb.port}/`, `:${proxy.port}/`), queues: ['cut'] })));
    await workersUp(s, 2);
    const longId = await launchWithKey(s.control, s.stage.w.base + DEF.long, 's4-long');
    const running = await poll(async () => {
      const row = await self.handle.db.selectFrom('executions').select('pid').where('job_instance_id', '=', longId!).executeTakeFirst();
      return row?.pid != null;
    }, 60_000);
    if (!running) throw new Error('the long command did not start on the agent to cut off');
    // The other host of queue `cut`, which runs the retry while the first one is cut off.
    s.agents.push(startAgent(agentSpec(s, 'chaos-4b', { queues: ['cut'] })));
    const launches = launchMains(s.control, s.stage.w, 's4', MAINS, 20_000);
    proxy.partition();
    const cutAt = performance.now();
    harness.log('4: agent chaos-4cut cut off from the database');
    // Meanwhile the harness plays the operator: once the monitor finished the cut-off command as lost, its retry
    // goes to chaos-4b while chaos-4cut is still unreachable.
    await settle(self.handle.db, self.control, self.stage.w, PARTITION_MS);
    await delay(Math.max(0, PARTITION_MS - (performance.now() - cutAt)));
    proxy.heal();
    harness.log('4: agent chaos-4cut reconnected');
    await launches;
    return await conclude(harness, s.stage, self.handle.db, s.control);
  } finally {
    await closeSelfHosted(harness, s);
    await proxy.close();
  }
}

/** Loaded into a skewed agent with --import: Date and Date.now run `KUROKO_CHAOS_CLOCK_SKEW_MS` off. */
const SKEW_PRELOAD = `const skew = Number(process.env.KUROKO_CHAOS_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;
class SkewedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
  static now() { return RealDate.now() + skew; }
}
globalThis.Date = SkewedDate;
`;
const SKEW_MS = 4 * 60_000;

export async function skewScenario(harness: Harness): Promise<ScenarioRow> {
  let s: SelfHosted | undefined;
  try {
    s = await openSelfHosted(harness, '5 agent clocks 4 min ahead and behind', 5000);
    const self = s;
    const preload = join(s.stage.dir, 'skew.mjs');
    writeFileSync(preload, SKEW_PRELOAD);
    const skewed = (ms: number) => ({ NODE_OPTIONS: `--import=${preload}`, KUROKO_CHAOS_CLOCK_SKEW_MS: String(ms) });
    s.agents.push(startAgent(agentSpec(s, 'chaos-5ahead', { env: skewed(SKEW_MS) })));
    s.agents.push(startAgent(agentSpec(s, 'chaos-5behind', { env: skewed(-SKEW_MS) })));
    await workersUp(s, 2);
    await launchMains(s.control, s.stage.w, 's5', MAINS, 30_000);
    // Long enough for leases, absence and worker-lost checks to have looked at the skewed rows.
    await delay(20_000);
    return await conclude(harness, s.stage, self.handle.db, s.control);
  } finally {
    await closeSelfHosted(harness, s);
  }
}

export async function logSinkScenario(harness: Harness): Promise<ScenarioRow> {
  let s: SelfHosted | undefined;
  let ec2: Ec2Agent | undefined;
  try {
    s = await openSelfHosted(harness, '6 log folder and CloudWatch Logs failing', 6000, { longSeconds: 8 });
    const self = s;
    // Two slots: the self-hosted agent polls every few ms while work is in flight (issue 18's wake-ups) and would
    // otherwise claim every command before the EC2 agent, which reads the Data API once a second, saw one.
    const spec = { ...agentSpec(s, 'chaos-6'), slots: 2 };
    s.agents.push(startAgent(spec));
    // An EC2 agent beside it, whose command output goes to CloudWatch Logs.
    ec2 = await startEc2Agent(s.databaseUrl, '@default', s.stage.onAgentRestart);
    await workersUp(s, 2);
    const launches = launchMains(s.control, s.stage.w, 's6', MAINS, 20_000);
    const longs = Promise.all([0, 1, 2, 3].map((i) => launchWithKey(self.control, self.stage.w.base + DEF.long, `s6-long-${i}`)));
    await delay(3_000);
    // The disk fills up: every log file the agent opens from now on answers ENOSPC, then the folder disappears;
    // CloudWatch Logs throttles every call, then fails half of them.
    removeFolder(spec.logDir);
    mkdirSync(spec.logDir);
    const last = await self.handle.db.selectFrom('executions').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    const from = Number(last?.id ?? 0);
    for (let id = from; id < from + 2_000; id++) symlinkSync('/dev/full', join(spec.logDir, `${id}.log`));
    ec2.aws.failLogs(1);
    harness.log('6: log folder full, CloudWatch Logs failing every call');
    await delay(10_000);
    removeFolder(spec.logDir);
    ec2.aws.failLogs(0.5);
    harness.log('6: log folder removed, CloudWatch Logs failing half the calls');
    await delay(8_000);
    mkdirSync(spec.logDir, { recursive: true });
    ec2.aws.failLogs(0);
    harness.log(`6: log folder back, CloudWatch Logs healed (${ec2.aws.failedLogCalls()} calls failed)`);
    await Promise.all([launches, longs]);
    const onEc2 = await self.handle.db.selectFrom('execution_histories').select('id').where('worker_id', 'is not', null).where('hostname', 'not like', 'chaos-%').execute();
    harness.log(`6: ${onEc2.length} commands ran on the EC2 agent`);
    return await conclude(harness, s.stage, self.handle.db, s.control);
  } finally {
    await ec2?.close();
    await closeSelfHosted(harness, s);
  }
}

/**
 * Takes a folder away at once, as a disk unmounted or cleaned by someone else would: renamed aside, then removed. A
 * recursive rm in place raced the agent's shells, which keep writing their status files there (ENOTEMPTY after
 * every retry, seen in one run); after the rename their writes fail as the scenario means them to.
 */
function removeFolder(path: string): void {
  const aside = `${path}.removed-${Date.now()}`;
  renameSync(path, aside);
  rmSync(aside, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
}
