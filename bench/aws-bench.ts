/**
 * `npm run bench:aws`: the AWS mode's pace with every database call paying a Data API round trip.
 *
 * A local Data API endpoint backed by MariaDB adds KUROKO_BENCH_LATENCY_MS (25 by default) to every call. 100
 * instances of `noop / execute: true / noop` are launched; the processor runs as the Lambda does (the loop of
 * processor passes, started by a tick or by the agents' nudges after each finished command); 2 agents with 4
 * slots each claim over their own Data API clients with the default 1 s poll (agents are not nudged in AWS
 * either); the notifier, nudged after processor loops that wrote something, delivers the events to a counting
 * channel. Output goes to an in-memory log sink (CloudWatch Logs is not part of the measurement).
 *
 * Latencies are per instance, from rows the engine writes: launch -> command start (the noop step, the
 * execute step creating the execution, the agent's claim and spawn), command exit -> instance finished (the
 * processor reading the result, the last noop, the finish), and launch -> finished.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { createAgent, type Agent } from '../agent/agent';
import type { LogSink } from '../adapters/logs/file-log-sink';
import type { NotificationChannel } from '../core/notify/notification-channel';
import { CHANNEL_KIND } from '../core/notify/notification-rules';
import { createDatabase, type DatabaseHandle } from '../db/connection';
import { fromDbTime } from '../db/column-codec';
import { createIdGenerator } from '../db/id-generator';
import { migrateToLatest } from '../db/migrator';
import { createEngineServices } from '../app/engine-services';
import { notifierPass, processorPass } from '../app/passes';
import { runWhileBusy } from '../app/run-while-busy';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { startDataApiServer } from '../test/helpers/data-api-server';
import { wakeable } from './wakeable';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const LATENCY_MS = Number(process.env.KUROKO_BENCH_LATENCY_MS ?? 25);
const INSTANCES = Number(process.env.KUROKO_BENCH_INSTANCES ?? 100);
const AGENTS = 2;
const SLOTS = 4;
const SCRIPT = 'noop:\nexecute: true\nnoop:\n';
/** The EventBridge tick: the processor also runs once a minute without nudges (never reached here). */
const TICK_MS = 60_000;
const LAUNCH_CONCURRENCY = 10;
/** The processor function's timeout: each simulated invocation loops within it, like the Lambda. */
const PROCESSOR_TIMEOUT_MS = 60_000;
const DEADLINE_MS = 4 * 60_000;
const KUROKO2_STEP_SECONDS = '1-3 s';

const memorySink: LogSink = { append: async () => {}, close: async () => {}, read: async () => '' };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function describeMs(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `${label.padEnd(34)} median ${percentile(sorted, 50).toFixed(0).padStart(6)} ms   p95 ${percentile(sorted, 95).toFixed(0).padStart(6)} ms`;
}

// The SDK's notice about future Node versions is noise in the printed figures.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

async function main(): Promise<void> {
  const name = `kuroko_bench_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  const dbUrl = new URL(MYSQL_URL);
  dbUrl.pathname = `/${name}`;
  const server = await startDataApiServer({ mysqlUrl: dbUrl.toString(), latencyMs: LATENCY_MS });
  const url = `data-api://${server.resourceArn}?secret=${encodeURIComponent(server.secretArn)}&database=${name}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
  const handles: DatabaseHandle[] = [];
  const agents: Agent[] = [];
  let stop = false;
  try {
    const setup = createDatabase(url);
    handles.push(setup);
    await migrateToLatest(setup.db);
    await insertDefinition(setup.db, 1, SCRIPT, { name: 'bench noop-true-noop' });

    let processorStatements = 0;
    const processorHandle = createDatabase(url, { log: () => void processorStatements++ });
    handles.push(processorHandle);
    const services = createEngineServices(processorHandle, { ids: createIdGenerator(processorHandle.db, { blockSize: 1000 }) });

    const processorWake = wakeable();
    const notifierWake = wakeable();
    for (let i = 0; i < AGENTS; i++) {
      const handle = createDatabase(url);
      handles.push(handle);
      agents.push(
        createAgent({
          database: handle,
          hostname: `bench-agent-${i + 1}`,
          slots: SLOTS,
          logSink: memorySink,
          onExecutionFinished: () => processorWake.wake(),
        }),
      );
    }
    let delivered = 0;
    const channel: NotificationChannel = { name: 'bench', kind: CHANNEL_KIND.console, send: async () => void delivered++ };
    const notifierHandle = createDatabase(url);
    handles.push(notifierHandle);
    const notifier = notifierPass(createEngineServices(notifierHandle), { channels: () => [channel] });
    const runNotifierPass = () => notifier.run({ passes: 0, remainingMs: () => Number.POSITIVE_INFINITY });

    await Promise.all(agents.map((a) => a.start()));
    server.resetCounts();
    processorStatements = 0;
    const started = performance.now();

    let launched = 0;
    const launchOne = async () => {
      while (launched < INSTANCES) {
        launched++;
        await services.operations.launch({ definitionId: 1, launchedBy: 'bench' });
        processorWake.wake();
      }
    };
    const launching = Promise.all(Array.from({ length: LAUNCH_CONCURRENCY }, launchOne));

    let committedSteps = 0;
    let processorRuns = 0;
    const processorLoop = (async () => {
      while (!stop) {
        const invokedAt = performance.now();
        const { total: result } = await runWhileBusy(processorPass(services), {
          remainingMs: () => PROCESSOR_TIMEOUT_MS - (performance.now() - invokedAt),
        });
        processorRuns++;
        committedSteps += result.committed;
        if (result.committed > 0) notifierWake.wake();
        await processorWake.sleep(TICK_MS);
      }
    })();
    const notifierLoop = (async () => {
      while (!stop) {
        await runNotifierPass();
        await notifierWake.sleep(TICK_MS);
      }
    })();

    await launching;
    const deadline = performance.now() + DEADLINE_MS;
    for (;;) {
      const row = await setup.db
        .selectFrom('job_instances')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('finished_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(row.n) === 0) break;
      if (performance.now() > deadline) throw new Error(`${row.n} instances still unfinished after ${DEADLINE_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const wallMs = performance.now() - started;
    const totalCalls = server.callCount();
    const processorCalls = processorStatements;
    stop = true;
    processorWake.wake();
    notifierWake.wake();
    await Promise.all([processorLoop, notifierLoop]);
    await runNotifierPass();

    const instances = await setup.db.selectFrom('job_instances').select(['id', 'created_at', 'finished_at', 'error_at']).execute();
    const histories = await setup.db.selectFrom('execution_histories').select(['job_instance_id', 'started_at', 'finished_at']).execute();
    const byInstance = new Map(histories.map((h) => [Number(h.job_instance_id), h]));
    const toStart: number[] = [];
    const exitToDone: number[] = [];
    const total: number[] = [];
    let errors = 0;
    for (const instance of instances) {
      if (instance.error_at !== null) errors++;
      const history = byInstance.get(Number(instance.id));
      if (history === undefined || history.started_at === null || instance.finished_at === null) continue;
      const launchedAt = fromDbTime(instance.created_at).getTime();
      const finishedAt = fromDbTime(instance.finished_at).getTime();
      toStart.push(fromDbTime(history.started_at).getTime() - launchedAt);
      exitToDone.push(finishedAt - fromDbTime(history.finished_at).getTime());
      total.push(finishedAt - launchedAt);
    }

    const lines = [
      `bench:aws - ${INSTANCES} instances of ${JSON.stringify(SCRIPT)}, Data API latency ${LATENCY_MS} ms per call, ` +
        `${AGENTS} agents x ${SLOTS} slots (1 s claim poll), processor loop nudged by agents, notifier nudged by the processor`,
      `instances finished: ${total.length} (${errors} in error); processor loop runs: ${processorRuns}; committed steps: ${committedSteps}; notifications delivered: ${delivered}`,
      describeMs('launch -> command start', toStart),
      describeMs('command exit -> instance finished', exitToDone),
      describeMs('launch -> instance finished', total),
      `Data API calls: ${totalCalls} in all (${(totalCalls / Math.max(1, committedSteps)).toFixed(1)} per committed step, agents' idle polls included); ` +
        `processor statements ${processorCalls} (${(processorCalls / Math.max(1, committedSteps)).toFixed(1)} per committed step)`,
      `wall time: ${(wallMs / 1000).toFixed(1)} s for ${INSTANCES} instances`,
      `Kuroko2 moves a token one node per ${KUROKO2_STEP_SECONDS} (its processor sleeps between polls). Here "command exit -> instance ` +
        `finished" is the step latency to compare: two steps (the execute result, the last noop) plus the finish. "launch -> command ` +
        `start" is mostly queueing: ${INSTANCES} instances arrive at once for ${AGENTS * SLOTS} slots, and agents poll every second.`,
    ];
    console.log(lines.join('\n'));
  } finally {
    stop = true;
    await Promise.all(agents.map((a) => a.stop('bench over')));
    for (const handle of handles) await handle.close();
    await server.close();
    const drop = await createConnection({ uri: MYSQL_URL });
    await drop.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await drop.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
