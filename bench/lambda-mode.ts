/**
 * The AWS mode of `npm run bench:throughput`: the Lambda functions and an EC2 agent over the Data API stand-in.
 *
 * - Every database call pays `latencyMs` (25 by default) at the local Data API server (test/helpers/data-api-server.ts)
 *   on MariaDB. The functions, the EC2 agent and the launches (the API function's part) each reach it through a
 *   stand-in of their own on the same database, so the calls are counted apart.
 * - The real handlers (functions/processor, notifier, scheduler, monitor) run in this process, imported after their
 *   environment is set as the CDK sets it (handlers read it at import, like a cold start). They are invoked as Lambda
 *   would: an asynchronous Invoke (InvocationType Event) that the loopback AWS server (test/helpers/fake-aws-server.ts)
 *   answers 202 and hands to the handler at once, each invocation running on its own (several may overlap, as
 *   concurrent execution environments would; every environment is warm: no cold start is modelled), and
 *   EventBridge's scheduled event for each of them once a minute.
 * - SQS (the doorbell the processor rings and the agent long-polls) and Lambda's Invoke are served by that loopback
 *   server to the real SDK clients (AWS_ENDPOINT_URL_*); every answer of it pays `awsLatencyMs` too.
 * - The EC2 agent is agent/main.ts from the sources in a process of its own (a separate machine), its configuration
 *   read from the loopback SSM, its output sent to the loopback CloudWatch Logs, its finishes nudging the processor.
 * - A launch goes through the engine services over the Data API and then nudges the processor, as the API function
 *   does.
 * - KUROKO_BENCH_PROCESSOR_CONCURRENCY=N (throughput-bench) models a reserved concurrency of N on the processor, which
 *   is not deployed: an invocation beyond it is throttled and retried as Lambda retries throttled asynchronous events.
 * - Idle sleep is on, as the deploy config leaves it by default (issue 17): every function reads the sleep parameter
 *   (loopback SSM), the scheduler puts the engine to sleep when nothing is in flight, and a launch ends a sleep as the
 *   API function does. (The retention function, which the CDK app also names to the scheduler, is not modelled.)
 * The state lives in one database for the whole mode (the handlers are bound to it at import), so each run gets a
 * definition id of its own.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { Kysely } from 'kysely';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createLambdaNudger } from '../adapters/aws/lambda-nudger';
import { createSsmSleepGate, INITIAL_SLEEP_VALUE } from '../adapters/aws/sleep-gate';
import type { AgentParameter } from '../app/config/config-schemas';
import { ENV_KEYS } from '../app/config/env-keys';
import { createEngineServices } from '../app/engine-services';
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import type { Database } from '../db/schema';
import { applyEnv, lambdaContext, scheduledEvent } from '../test/functions/function-fixtures';
import { startDataApiServer, type DataApiCall, type DataApiServer } from '../test/helpers/data-api-server';
import { startFakeAws, type FakeAwsCall } from '../test/helpers/fake-aws-server';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { waitFor } from '../test/helpers/wait-for';

const REGION = 'us-east-1';
const STAGE = 'bench';
const FUNCTION_NAMES = {
  processor: 'kuroko-bench-processor',
  notifier: 'kuroko-bench-notifier',
  scheduler: 'kuroko-bench-scheduler',
  monitor: 'kuroko-bench-monitor',
} as const;
/** The functions' timeouts (cdk/stacks/engine-stack.ts: the processor 60 s, the others the default 30 s). */
const TIMEOUT_MS: Record<string, number> = { [FUNCTION_NAMES.processor]: 60_000 };
const DEFAULT_TIMEOUT_MS = 30_000;
/** MariaDB connections of the functions' Data API stand-in. */
const FUNCTIONS_POOL = 40;
/** EventBridge's rate(1 minute) rules. */
const TICK_MS = 60_000;
const wallNow = () => performance.timeOrigin + performance.now();
/** `kuroko-bench-processor` -> `processor`. */
const shortName = (functionName: string) => functionName.replace('kuroko-bench-', '');
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench-secret-key' };
const AGENT_PARAMETER_NAME = `/kuroko/${STAGE}/workers/default/agent-config`;
/** cdk/stacks/engine-stack.ts sleepParameterName. */
const SLEEP_PARAMETER_NAME = `/kuroko/${STAGE}/sleep`;

interface HandlerModule {
  handler: (event: unknown, context: unknown) => Promise<unknown>;
  runtime: { close(): Promise<void> };
}
/** The functions' entry points (functions/<name>/handler.ts), by function name. */
const HANDLER_FILES: Record<string, string> = {
  [FUNCTION_NAMES.processor]: '../functions/processor/handler.ts',
  [FUNCTION_NAMES.notifier]: '../functions/notifier/handler.ts',
  [FUNCTION_NAMES.scheduler]: '../functions/scheduler/handler.ts',
  [FUNCTION_NAMES.monitor]: '../functions/monitor/handler.ts',
};

/** Data API calls so far, by caller. */
export interface CallCounts {
  functions: number;
  agent: number;
  api: number;
  /** EventBridge ticks delivered so far (each of the four functions once a minute), not Data API calls. */
  ticks: number;
}

export const callsBetween = (a: CallCounts, b: CallCounts): CallCounts => ({
  functions: b.functions - a.functions,
  agent: b.agent - a.agent,
  api: b.api - a.api,
  ticks: b.ticks - a.ticks,
});
/** `functions / agent / launch` calls per job (or step). */
export const perJob = (c: CallCounts, jobs: number): string => [c.functions, c.agent, c.api].map((n) => (n / jobs).toFixed(1)).join(' / ');

/** Drops the JSON lines the functions write on stdout (their logs, the notifier's metric), which would mix with a table. */
export function quietStdout(): void {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
    String(chunk).startsWith('{') ? true : write(chunk, ...rest)) as typeof process.stdout.write;
}

export interface LambdaRun {
  db: Kysely<Database>;
  definitionId: number;
  launch(definitionId: number): Promise<number>;
  stop(): Promise<void>;
  calls(): CallCounts;
  /** Resolves once no function invocation is running. */
  settled(): Promise<void>;
  /** Delivers EventBridge's scheduled event to each function now (as the minute's rules do) and waits for the runs. */
  tick(): Promise<void>;
}

/**
 * One entry of a timeline (KUROKO_BENCH_W1_TIMELINE): a Data API call (`who` the function environment, `agent` or
 * `api`), an AWS call (`sqs`, `lambda`) or a function invocation, with wall-clock ms.
 */
export interface TimelineEntry {
  who: string;
  kind: 'data-api' | 'aws' | 'invocation';
  what: string;
  startedAt: number;
  endedAt: number;
}

export interface LambdaWorld {
  start(): Promise<LambdaRun>;
  /** What was recorded so far when opened with `timeline` (else empty), in order of start. */
  timeline(): TimelineEntry[];
  /** Invocations so far, by function, and those that threw. */
  invocations(): Readonly<Record<string, number>>;
  /** Execution environments started so far, by function. */
  environments(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

/** Sets up the database, the stand-ins and the functions once; each start() runs a fresh EC2 agent process. */
export interface LambdaWorldOptions {
  mysqlUrl: string;
  latencyMs: number;
  awsLatencyMs: number;
  slots: number;
  root: string;
  /** Models the processor's reserved concurrency (throttled events retried as Lambda does); none by default, as deployed. */
  processorConcurrency?: number;
  /** Records every Data API call, AWS call and invocation with its caller and times (timeline()). */
  timeline?: boolean;
}

export async function openLambdaWorld(options: LambdaWorldOptions): Promise<LambdaWorld> {
  const scratch = await createMysqlDatabase(options.mysqlUrl);
  const direct = createDatabase(scratch.url);
  await migrateToLatest(direct.db);
  // The service pools connections in front of the cluster; the functions' stand-in gets more, as many environments
  // call at once (MariaDB's default max_connections, 151, is shared with whatever else runs).
  const timeline: TimelineEntry[] = [];
  const record = (who: string, call: DataApiCall) =>
    timeline.push({ who, kind: 'data-api', what: `${call.operation === 'Execute' ? '' : `${call.operation} `}${call.sql ?? ''}${call.error ? ` -> ${call.error}` : ''}`, startedAt: call.startedAt, endedAt: call.endedAt });
  const stand = (poolSize: number, who: string): Promise<DataApiServer> =>
    startDataApiServer({
      mysqlUrl: scratch.url,
      latencyMs: options.latencyMs,
      poolSize,
      ...(options.timeline ? { onCall: (call: DataApiCall) => record(call.caller ?? who, call) } : {}),
    });
  const [functionsApi, agentApi, apiApi] = await Promise.all([stand(FUNCTIONS_POOL, 'functions'), stand(10, 'agent'), stand(10, 'api')]);

  // One warm execution environment runs one invocation at a time; an invocation that finds every environment of its
  // function busy gets a new one, as Lambda scales out (no cold start is modelled). Each environment is a module
  // instance of its own (a `?env=N` import), so it has its own database client, as a container would.
  const environments = new Map<string, { busy: boolean; module: HandlerModule }[]>();
  const throttles = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();
  const invocations: Record<string, number> = {};
  const environmentOf = async (functionName: string): Promise<{ busy: boolean; module: HandlerModule } | undefined> => {
    const entry = HANDLER_FILES[functionName];
    if (entry === undefined) return undefined;
    const pool = environments.get(functionName) ?? [];
    environments.set(functionName, pool);
    const free = pool.find((e) => !e.busy);
    if (free) {
      free.busy = true;
      return free;
    }
    const environment = { busy: true, module: undefined as unknown as HandlerModule };
    pool.push(environment);
    const n = pool.length;
    // Each environment's Data API endpoint carries its name as a path (`<endpoint>/processor-1`), so the stand-in
    // tells the callers apart; the handler reads it at import, so imports go one at a time.
    const imported = importing.then(async () => {
      process.env[ENV_KEYS.dataApiEndpoint] = `${functionsApi.endpoint}/${shortName(functionName)}-${n}`;
      return (await import(`${new URL(entry, import.meta.url).href}?env=${n}`)) as HandlerModule;
    });
    importing = imported.catch(() => undefined);
    environment.module = await imported;
    return environment;
  };
  let importing: Promise<unknown> = Promise.resolve();
  const active: Record<string, number> = {};
  const invoke = (functionName: string, event: unknown, attempt = 0): void => {
    if (HANDLER_FILES[functionName] === undefined) return;
    if (functionName === FUNCTION_NAMES.processor && (active[functionName] ?? 0) >= (options.processorConcurrency ?? Number.POSITIVE_INFINITY)) {
      // Reserved concurrency reached: Lambda puts the event back in its queue and retries it, 1 s after the first
      // attempt and exponentially longer up to 5 minutes (invocation-async-error-handling.html).
      invocations.throttled = (invocations.throttled ?? 0) + 1;
      const retry = setTimeout(() => invoke(functionName, event, attempt + 1), Math.min(300_000, 1_000 * 2 ** attempt));
      throttles.add(retry);
      return;
    }
    active[functionName] = (active[functionName] ?? 0) + 1;
    invocations[functionName] = (invocations[functionName] ?? 0) + 1;
    const began = performance.now();
    const timeoutMs = TIMEOUT_MS[functionName] ?? DEFAULT_TIMEOUT_MS;
    const run: Promise<unknown> = (async () => {
      const environment = await environmentOf(functionName);
      if (environment === undefined) return;
      const startedAt = wallNow();
      try {
        await environment.module.handler(event, lambdaContext(functionName, () => timeoutMs - (performance.now() - began)));
      } finally {
        environment.busy = false;
        if (options.timeline) {
          const n = (environments.get(functionName) ?? []).indexOf(environment) + 1;
          const trigger = (event as { source?: string } | undefined)?.source === 'aws.events' ? 'tick' : 'nudge';
          timeline.push({ who: `${shortName(functionName)}-${n}`, kind: 'invocation', what: `invocation (${trigger})`, startedAt, endedAt: wallNow() });
        }
      }
    })()
      .finally(() => (active[functionName] = (active[functionName] ?? 1) - 1))
      .catch((error: unknown) => {
        invocations.failed = (invocations.failed ?? 0) + 1;
        console.error(`${functionName} failed`, error);
      })
      .finally(() => running.delete(run));
    running.add(run);
  };
  const aws = await startFakeAws('', {
    latencyMs: options.awsLatencyMs,
    onInvoke: (name, payload) => invoke(name, payload),
    ...(options.timeline
      ? {
          onCall: (call: FakeAwsCall) =>
            timeline.push({
              who: call.service,
              kind: 'aws',
              what: `${call.operation.replace('kuroko-bench-', '')}${call.received === undefined ? '' : call.received ? ' (a message)' : ' (empty)'}`,
              startedAt: call.startedAt,
              endedAt: call.endedAt,
            }),
        }
      : {}),
  });
  const doorbellQueueUrl = `${aws.endpoint}/123456789012/kuroko-${STAGE}-doorbell`;

  applyEnv({
    [ENV_KEYS.stage]: STAGE,
    [ENV_KEYS.dbClusterArn]: functionsApi.resourceArn,
    [ENV_KEYS.dbSecretArn]: functionsApi.secretArn,
    [ENV_KEYS.dbName]: scratch.name,
    [ENV_KEYS.dataApiEndpoint]: functionsApi.endpoint,
    [ENV_KEYS.powertoolsLogLevel]: 'ERROR',
    [ENV_KEYS.alertTopicArn]: `arn:aws:sns:${REGION}:123456789012:kuroko-${STAGE}-alerts`,
    [ENV_KEYS.metricsNamespace]: 'KurokoBench',
    [ENV_KEYS.declaredQueues]: '["@default"]',
    [ENV_KEYS.processorFunction]: FUNCTION_NAMES.processor,
    [ENV_KEYS.notifierFunction]: FUNCTION_NAMES.notifier,
    [ENV_KEYS.doorbellQueueUrl]: doorbellQueueUrl,
    [ENV_KEYS.sleepParameter]: SLEEP_PARAMETER_NAME,
    AWS_REGION: REGION,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ENDPOINT_URL_LAMBDA: aws.endpoint,
    AWS_ENDPOINT_URL_SQS: aws.endpoint,
    AWS_ENDPOINT_URL_SNS: aws.endpoint,
    AWS_ENDPOINT_URL_SSM: aws.endpoint,
    ...CREDENTIALS,
  });
  const trace =
    process.env.KUROKO_BENCH_TRACE === '1'
      ? setInterval(() => console.error('  trace', JSON.stringify({ invocations, environments: [...environments].map(([n, p]) => `${n}:${p.length}`), running: running.size, aws: aws.calls(), functions: functionsApi.callCount(), agent: agentApi.callCount() })), 2_000)
      : undefined;
  aws.setParameter(INITIAL_SLEEP_VALUE, SLEEP_PARAMETER_NAME);
  let tickCount = 0;
  const tick = () => {
    tickCount++;
    for (const name of Object.values(FUNCTION_NAMES)) invoke(name, scheduledEvent(`${name}-tick`, new Date().toISOString()));
  };
  const ticks = setInterval(tick, TICK_MS);

  const agentParameter: AgentParameter = {
    stage: STAGE,
    region: REGION,
    database: { clusterArn: agentApi.resourceArn, secretArn: agentApi.secretArn, databaseName: scratch.name, endpoint: agentApi.endpoint },
    queue: '@default',
    slots: options.slots,
    idleMinutes: 60,
    executionLogGroupName: `/kuroko/${STAGE}/executions`,
    processorFunctionName: FUNCTION_NAMES.processor,
    shutdownWhenIdle: false,
    doorbellQueueUrl,
  };
  aws.setParameter(JSON.stringify(agentParameter), AGENT_PARAMETER_NAME);

  // The API function's part: launches over the Data API, then a nudge to the processor before it returns.
  const apiHandle = createDatabase(
    `data-api://${apiApi.resourceArn}?secret=${encodeURIComponent(apiApi.secretArn)}&database=${scratch.name}&endpoint=${encodeURIComponent(apiApi.endpoint)}&region=${REGION}`,
  );
  const api = createEngineServices(apiHandle);
  const lambdaClient = new LambdaClient({
    region: REGION,
    endpoint: aws.endpoint,
    credentials: { accessKeyId: CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  const nudgeProcessor = createLambdaNudger({ client: lambdaClient, functionName: FUNCTION_NAMES.processor });
  const ssmClient = new SSMClient({ region: REGION, endpoint: aws.endpoint, credentials: { accessKeyId: CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDENTIALS.AWS_SECRET_ACCESS_KEY } });
  const sleepGate = createSsmSleepGate({ client: ssmClient, parameterName: SLEEP_PARAMETER_NAME, logger: { info: () => {}, warn: (m) => console.error(m) } });
  const settled = async () => {
    while (running.size > 0) await Promise.all([...running]);
  };
  let nextDefinitionId = 1;

  return {
    timeline: () => [...timeline].sort((a, b) => a.startedAt - b.startedAt),
    invocations: () => ({ ...invocations }),
    environments: () => Object.fromEntries([...environments].map(([name, pool]) => [name, pool.length])),
    async start() {
      const agent = spawn(process.execPath, ['--import', 'tsx', join(options.root, 'agent/main.ts')], {
        cwd: options.root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          [ENV_KEYS.agentConfigParameter]: AGENT_PARAMETER_NAME,
          AWS_REGION: REGION,
          AWS_ENDPOINT_URL: aws.endpoint,
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...CREDENTIALS,
        },
      });
      let log = '';
      const keep = (chunk: string) => (log = (log + chunk).slice(-2000));
      agent.stdout.setEncoding('utf8').on('data', keep);
      agent.stderr.setEncoding('utf8').on('data', keep);
      const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
      const registered = await direct.db.selectFrom('workers').select('id').execute();
      await waitFor(async () => (await direct.db.selectFrom('workers').select('id').execute()).length > registered.length, {
        timeoutMs: 60_000,
        description: `the EC2 agent to register (${log})`,
      });
      const definitionId = nextDefinitionId++;
      return {
        db: direct.db,
        definitionId,
        launch: async (id) => {
          const { instance } = await api.operations.launch({ definitionId: id, launchedBy: 'bench' });
          // As http/lambda-api.ts does after a write: the processor's nudge and the end of a sleep, side by side.
          await Promise.all([nudgeProcessor.nudge(), sleepGate.wake('api launch', new Date())]);
          return instance.id;
        },
        tick: async () => {
          tick();
          await settled();
        },
        calls: () => ({ functions: functionsApi.callCount(), agent: agentApi.callCount(), api: apiApi.callCount(), ticks: tickCount }),
        settled,
        stop: async () => {
          agent.kill('SIGTERM');
          await exited;
          await settled();
        },
      };
    },
    async close() {
      clearInterval(ticks);
      for (const retry of throttles) clearTimeout(retry);
      clearInterval(trace);
      await settled();
      await nudgeProcessor.settled();
      lambdaClient.destroy();
      ssmClient.destroy();
      await Promise.all([...environments.values()].flat().map((e) => e.module.runtime.close()));
      await apiHandle.close();
      await direct.close();
      await aws.close();
      await Promise.all([functionsApi.close(), agentApi.close(), apiApi.close()]);
      await scratch.drop();
    },
  };
}
