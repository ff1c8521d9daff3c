/**
 * The AWS scenarios: the Lambda handlers (processor, scheduler, monitor, notifier) invoked in this process as
 * their EventBridge ticks would, over the local Data API stand-in (test/helpers/data-api-server.ts) on the
 * harness's MariaDB, with `kuroko agent` processes on the same Data API. Launches, retries and skips go through
 * the application's instance operations over the Data API too (what the api Lambda runs). SNS is mocked at the
 * client boundary; the webhook channel is the harness's receiver.
 * 2. Data API faults on 5% of calls (throttling, 5xx, dropped calls, answers lost after the change was made) plus
 *    pauses with resumes, during a run;
 * 3. a handler's invocation cut off at a random call (every call after it dropped unanswered, its open transaction
 *    left to expire), and invoked again, many times over.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';
import { ENV_KEYS } from '../../app/config/env-keys';
import { createEngineServices } from '../../app/engine-services';
import { startDataApiServer, type DataApiServer } from '../../test/helpers/data-api-server';
import { lambdaContext, scheduledEvent } from '../../test/functions/function-fixtures';
import type { ScenarioRow } from './report';
import { closeStage, conclude, lastWords, openStage, randomBetween, type Harness } from './scenario';
import { FAST_MONITOR, startAgent } from './topology';
import type { Tracked } from './processes';
import { launchMains, seedDefinitions, type Control } from './workload';

type Handler = (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;
interface Handlers {
  processor: Handler;
  scheduler: Handler;
  monitor: Handler;
  notifier: Handler;
}

interface AwsStack {
  dataApi: DataApiServer;
  dataApiUrl: string;
  /** Direct to MariaDB, for the checks (no faults). */
  reader: DatabaseHandle;
  /** Over the Data API, for launches, retries and skips. */
  api: DatabaseHandle;
  handlers: Handlers;
}

let stack: AwsStack | undefined;
let stackStarting: Promise<AwsStack> | undefined;
const MAINS = 6;
const CUT_OFF_PASSES = 50;

/** The handlers read their configuration at import, like a cold start: one stack serves both scenarios. */
function awsStack(harness: Harness): Promise<AwsStack> {
  stackStarting ??= startAwsStack(harness);
  return stackStarting;
}

async function startAwsStack(harness: Harness): Promise<AwsStack> {
  const name = 'chaos_aws';
  const mysqlUrl = await harness.mariadb.createDatabase(name);
  const reader = createDatabase(mysqlUrl);
  await migrateToLatest(reader.db);
  const dataApi = await startDataApiServer({ mysqlUrl, transactionIdleTimeoutMs: 10_000, poolSize: 40 });
  const dataApiUrl =
    `data-api://${dataApi.resourceArn}?secret=${encodeURIComponent(dataApi.secretArn)}` +
    `&database=${name}&endpoint=${encodeURIComponent(dataApi.endpoint)}&region=us-east-1`;
  Object.assign(process.env, {
    ...FAST_MONITOR,
    [ENV_KEYS.stage]: 'chaos',
    [ENV_KEYS.dbClusterArn]: dataApi.resourceArn,
    [ENV_KEYS.dbSecretArn]: dataApi.secretArn,
    [ENV_KEYS.dbName]: name,
    [ENV_KEYS.dataApiEndpoint]: dataApi.endpoint,
    [ENV_KEYS.powertoolsLogLevel]: 'ERROR',
    [ENV_KEYS.alertTopicArn]: 'arn:aws:sns:us-east-1:123456789012:kuroko-chaos-alerts',
    [ENV_KEYS.metricsNamespace]: 'KurokoChaos',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'chaos',
    AWS_SECRET_ACCESS_KEY: 'chaos-secret-key',
  });
  mockClient(SNSClient).on(PublishCommand).resolves({ MessageId: 'chaos' });
  const handlers: Handlers = {
    processor: (await import('../../functions/processor/handler')).handler as Handler,
    scheduler: (await import('../../functions/scheduler/handler')).handler as Handler,
    monitor: (await import('../../functions/monitor/handler')).handler as Handler,
    notifier: (await import('../../functions/notifier/handler')).handler as Handler,
  };
  stack = { dataApi, dataApiUrl, reader, api: createDatabase(dataApiUrl), handlers };
  return stack;
}

export async function closeAwsStack(): Promise<void> {
  if (!stack) return;
  await stack.api.close().catch(() => undefined);
  await stack.reader.close().catch(() => undefined);
  await stack.dataApi.close().catch(() => undefined);
  stack = undefined;
  stackStarting = undefined;
}

/** Launch, retry and skip over the Data API, as the api Lambda runs them; a failed call answers undefined. */
function operationsControl(api: DatabaseHandle): Control {
  const { operations } = createEngineServices(api);
  return {
    launch: (definitionId, key) =>
      operations.launch({ definitionId, launchedBy: 'chaos', ...(key ? { idempotencyKey: key } : {}) }).then((r) => r.instance.id, () => undefined),
    retry: async (instanceId, tokenId) => void (await operations.retryToken(instanceId, tokenId, 'chaos')),
    skip: async (instanceId, tokenId) => void (await operations.skipToken(instanceId, tokenId, 'chaos')),
  };
}

const TICK_MS = { processor: 300, scheduler: 5_000, monitor: 1_000, notifier: 700 } as const;

/** Every handler on its tick until `stop` (an invocation that fails is one EventBridge tick lost, as on AWS). */
function tickAll(handlers: Handlers, until: () => boolean, errors: Map<string, number>): Promise<void> {
  const loop = async (name: keyof Handlers) => {
    while (!until()) {
      await handlers[name](scheduledEvent(`kuroko-chaos-${name}`, new Date().toISOString()), lambdaContext(`kuroko-chaos-${name}`)).catch(() => {
        errors.set(name, (errors.get(name) ?? 0) + 1);
      });
      await delay(TICK_MS[name]);
    }
  };
  return Promise.all((Object.keys(TICK_MS) as (keyof Handlers)[]).map(loop)).then(() => undefined);
}

/**
 * Drops the JSON lines the handlers print (EMF metrics on stdout, Powertools' "invocation failed" on stderr: each
 * injected fault makes one); the harness counts failed invocations instead.
 */
function quietJsonLines(): () => void {
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write.bind(stream));
  streams.forEach((stream, i) => {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) =>
      String(chunk).startsWith('{') ? true : writes[i]!(chunk, ...(rest as []))) as typeof stream.write;
  });
  return () => streams.forEach((stream, i) => (stream.write = writes[i]!));
}

async function runAws(harness: Harness, name: string, base: number, tickDuringFault: boolean, fault: (s: AwsStack) => Promise<void>): Promise<ScenarioRow> {
  const restoreOutput = quietJsonLines();
  const s = await awsStack(harness);
  const stage = await openStage(harness, name, base);
  const agents: Tracked[] = [];
  let stopTicks = false;
  const errors = new Map<string, number>();
  try {
    await seedDefinitions(s.reader.db, stage.w, { webhookUrl: stage.webhook.url, cron: true });
    for (const host of ['a', 'b']) {
      const logDir = join(stage.dir, `logs-${host}`);
      mkdirSync(logDir, { recursive: true });
      agents.push(
        startAgent({
          hostname: `chaos-${base}${host}`,
          databaseUrl: s.dataApiUrl,
          logDir,
          env: { AWS_ACCESS_KEY_ID: 'chaos', AWS_SECRET_ACCESS_KEY: 'chaos-secret-key' },
          onRestart: stage.onAgentRestart,
        }),
      );
    }
    let ticks = tickDuringFault ? tickAll(s.handlers, () => stopTicks, errors) : Promise.resolve();
    const control = operationsControl(s.api);
    const launches = launchMains(control, stage.w, `s${base}`, MAINS, 20_000);
    await fault(s);
    if (!tickDuringFault) ticks = tickAll(s.handlers, () => stopTicks, errors);
    await launches;
    // An agent not running now (it exited 0, or failed and waits for its restart) leaves its queue unserved for now: say so.
    for (const agent of agents) if (!agent.alive()) harness.log(`${name}: ${agent.name} exited: ${lastWords(agent)}`);
    const row = await conclude(harness, stage, s.reader.db, control);
    stopTicks = true;
    await ticks;
    harness.log(`${name}: failed invocations ${JSON.stringify(Object.fromEntries(errors))}`);
    return row;
  } finally {
    stopTicks = true;
    s.dataApi.setFaults({});
    s.dataApi.restore();
    await Promise.all(agents.map((a) => a.stop('SIGTERM')));
    await closeStage(stage);
    restoreOutput();
  }
}

export function dataApiFaultScenario(harness: Harness): Promise<ScenarioRow> {
  return runAws(harness, '2 Data API faults 5%, lost answers, resumes', 2000, true, async (s) => {
    s.dataApi.setFaults({ throttleRate: 0.0125, serverErrorRate: 0.0125, dropRate: 0.0125, lostAnswerRate: 0.0125 });
    for (let i = 0; i < 3; i++) {
      await delay(randomBetween(5_000, 9_000));
      s.dataApi.pause(2_000);
      harness.log('2: Data API cluster paused (2 s resume)');
    }
    await delay(5_000);
    s.dataApi.setFaults({});
  });
}

export function lambdaCutOffScenario(harness: Harness): Promise<ScenarioRow> {
  return runAws(harness, '3 Lambda passes cut off at random calls', 3000, false, async (s) => {
    const names = Object.keys(TICK_MS) as (keyof Handlers)[];
    for (let i = 0; i < CUT_OFF_PASSES; i++) {
      const name = names[Math.floor(Math.random() * names.length)]!;
      s.dataApi.cutOffAfter(Math.floor(randomBetween(0, 12)));
      await s.handlers[name](scheduledEvent(`kuroko-chaos-${name}`), lambdaContext(`kuroko-chaos-${name}`)).catch(() => undefined);
      s.dataApi.restore();
      await delay(randomBetween(100, 600));
    }
  });
}
