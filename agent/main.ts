/**
 * The worker agent's entry on EC2 (bundled by the CDK app into one ES module, plus the EC2 client it loads to end its
 * instance, and run by systemd).
 *
 * It reads its JSON configuration from the SSM parameter named by KUROKO_AGENT_CONFIG_PARAMETER, registers with
 * the instance id as hostname (so the provisioner can tie the worker row to its instance), writes command output
 * to CloudWatch Logs, nudges the processor after each finished command, and stops after `idleMinutes` with
 * nothing to run, unless its queue's `minInstances` keeps it (agent/idle-exit.ts). After such an idle (or
 * drain-requested) stop, and only when the parameter says
 * `shutdownWhenIdle`, it shuts the instance down (instances terminate on shutdown); if `shutdown` is not allowed
 * (the agent runs unprivileged) it terminates its own instance through EC2, which its role allows for managed
 * instances of its queue. A stop by SIGTERM (systemd, an instance shutting down) never shuts anything down.
 */
import { execFile } from 'node:child_process';
import { hostname as osHostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SSMClient } from '@aws-sdk/client-ssm';
import { dataApiUrl } from '../app/config/data-api-url';
import type * as Ec2Fleet from '../adapters/aws/ec2-fleet';
import { fetchInstanceId } from '../adapters/aws/instance-metadata';
import { createLambdaNudger } from '../adapters/aws/lambda-nudger';
import { SqsDoorbell } from '../adapters/aws/sqs-doorbell';
import { SQSClient } from '@aws-sdk/client-sqs';
import { readParameter } from '../adapters/aws/ssm-parameters';
import { ConfigError } from '../core/errors';
import { createDatabase, type DatabaseHandle } from '../db/connection';
import { parseAgentParameter, type AgentParameter, type Environment } from '../app/config/config-schemas';
import { ENV_KEYS } from '../app/config/env-keys';
import { FleetRepository } from '../db/repositories/fleet-repository';
import { DEFAULT_POLL_INTERVAL_MS, createAgent, type AgentLogger } from './agent';
import { mayLeaveIdle } from './idle-exit';
import { CloudWatchLogSink } from '../adapters/aws/cloudwatch-log-sink';
import { DEFAULT_SHELL_PATH } from './process-runner';
import { prepareRunAs } from './run-as';

const MS_PER_MINUTE = 60_000;
/** With a doorbell, the longest wait between two looks at the Data API when idle (a lost ring costs at most this). */
export const DOORBELL_IDLE_POLL_MS = 30_000;

export const AGENT_EXIT = { signal: 'signal', idle: 'idle' } as const;
export type AgentExit = (typeof AGENT_EXIT)[keyof typeof AGENT_EXIT];

export interface AwsAgentDeps {
  env: Environment;
  ssm?: SSMClient;
  logs?: CloudWatchLogsClient;
  lambda?: LambdaClient;
  sqs?: SQSClient;
  ec2?: EC2Client;
  /** The instance id (IMDSv2 by default); undefined when not on EC2. */
  instanceId?: () => Promise<string | undefined>;
  openDatabase?: (url: string) => DatabaseHandle;
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Runs `shutdown -h now`; rejects when not allowed. */
  shutdown?: () => Promise<void>;
  /**
   * The user every command runs as (`--run-as` on the agent's command line; the CDK's unit passes the job user):
   * checked before anything else, so an agent that cannot switch users runs nothing.
   */
  runAs?: string;
  /** Overrides the parameter's idleMinutes (tests). */
  idleTimeoutMs?: number;
  /** Overrides the agent's poll interval (tests). */
  pollIntervalMs?: number;
  logger?: AgentLogger;
}

export interface AwsAgentResult {
  exit: AgentExit;
  config: AgentParameter;
  hostname: string;
  /** How the instance was ended, if it was. */
  ended: 'shutdown' | 'terminated' | undefined;
}

/** One JSON object per line on stdout (journald keeps it; CloudWatch agents can ship it). */
export const jsonLineLogger: AgentLogger = {
  info: (message, data) => console.log(JSON.stringify({ level: 'INFO', time: new Date().toISOString(), message, ...data })),
  warn: (message, data) => console.log(JSON.stringify({ level: 'WARN', time: new Date().toISOString(), message, ...data })),
  error: (message, data) => console.log(JSON.stringify({ level: 'ERROR', time: new Date().toISOString(), message, ...data })),
};

/**
 * Set by the EC2 agent's bundle (scripts/agent-bundle.ts) to the file next to it that holds aws/ec2-fleet bundled
 * on its own: bundled in, the EC2 client's megabytes of code would sit in the agent's memory its whole life.
 * Unset (tests, tsx), the module is imported from the sources.
 */
declare const KUROKO_EC2_FLEET_MODULE: string | undefined;
type Ec2FleetModule = typeof Ec2Fleet;

const loadEc2Fleet = (): Promise<Ec2FleetModule> =>
  typeof KUROKO_EC2_FLEET_MODULE === 'string'
    ? (import(new URL(KUROKO_EC2_FLEET_MODULE, import.meta.url).href) as Promise<Ec2FleetModule>)
    : import('../adapters/aws/ec2-fleet');

const runShutdown = async (): Promise<void> => {
  await promisify(execFile)('shutdown', ['-h', 'now']);
};

/** Reads the configuration, runs the agent until it stops, then ends the instance when configured to. */
export async function runAwsAgent(deps: AwsAgentDeps): Promise<AwsAgentResult> {
  const { env } = deps;
  const logger = deps.logger ?? jsonLineLogger;
  const runAs = deps.runAs === undefined ? undefined : await prepareRunAs(deps.runAs, DEFAULT_SHELL_PATH);
  if (runAs !== undefined) logger.info(`commands run as ${runAs.name}`, { uid: runAs.uid, gid: runAs.gid });
  const parameterName = env[ENV_KEYS.agentConfigParameter];
  if (!parameterName) throw new ConfigError([`${ENV_KEYS.agentConfigParameter}: is required (the SSM parameter holding the agent's configuration)`]);
  const region = env.AWS_REGION;
  const clientConfig = region ? { region } : {};
  const ssm = deps.ssm ?? new SSMClient(clientConfig);
  const config = parseAgentParameter(await readParameter(ssm, parameterName));

  const instanceId = await (deps.instanceId ?? (() => fetchInstanceId()))().catch((error: unknown) => {
    logger.warn('no instance id from the metadata service; registering with the host name', { error: String(error) });
    return undefined;
  });
  const hostname = instanceId ?? osHostname();
  const database = (deps.openDatabase ?? createDatabase)(dataApiUrl(config.database, config.region));
  const logSink = new CloudWatchLogSink({
    client: deps.logs ?? new CloudWatchLogsClient({ region: config.region }),
    logGroupName: config.executionLogGroupName,
    logger,
  });
  const processor = createLambdaNudger({
    client: deps.lambda ?? new LambdaClient({ region: config.region }),
    functionName: config.processorFunctionName,
    logger,
  });
  const minInstances = config.minInstances ?? 0;
  // With the doorbell (issue 18), the Data API is read every second only while work is in flight (and 2 s after);
  // then the wait is DOORBELL_IDLE_POLL_MS at once, and the processor's ring wakes the agent.
  const doorbell = config.doorbellQueueUrl && new SqsDoorbell({ client: deps.sqs ?? new SQSClient({ region: config.region }), queueUrl: config.doorbellQueueUrl });
  const agent = createAgent({
    database,
    hostname,
    queues: [config.queue],
    slots: config.slots,
    idleTimeoutMs: deps.idleTimeoutMs ?? config.idleMinutes * MS_PER_MINUTE,
    ...(minInstances > 0 ? { mayStopIdle: mayStopIdleOf(database, config.queue, minInstances, logger) } : {}),
    logSink,
    logger,
    inheritEnv: { HOME: env.HOME, PATH: env.PATH, LANG: env.LANG },
    ...(runAs !== undefined ? { runAs } : {}),
    onExecutionFinished: (executionId) => void processor.nudge(executionId),
    // systemd (KillMode=mixed) kills what a dead agent leaves; an instance is never reused by another agent either.
    leftoverCheckMs: 0,
    ...(doorbell ? { doorbell, hotPollMs: DEFAULT_POLL_INTERVAL_MS, pollIntervalMs: DOORBELL_IDLE_POLL_MS } : {}),
    ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
  });

  let exit: AgentExit = AGENT_EXIT.idle;
  const signals = deps.signals ?? process;
  const onSignal = (signal: NodeJS.Signals) => {
    exit = AGENT_EXIT.signal;
    logger.info(`${signal} received: draining`);
    void agent.stop(signal);
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    await agent.start();
    await agent.done;
  } finally {
    signals.off('SIGTERM', onSignal);
    signals.off('SIGINT', onSignal);
    await logSink.closeAll().catch((error: unknown) => logger.error('output left unsent to CloudWatch Logs', { error: String(error) }));
    await processor.settled();
    await database.close();
  }

  let ended: AwsAgentResult['ended'];
  if (exit === AGENT_EXIT.idle && config.shutdownWhenIdle === true) {
    ended = await endInstance(deps, config, instanceId, logger);
  }
  return { exit, config, hostname, ended };
}

/** Asks the worker rows whether this idle worker may leave without taking the queue below its minimum. */
function mayStopIdleOf(database: DatabaseHandle, queue: string, minInstances: number, logger: AgentLogger) {
  const fleet = new FleetRepository(database.db);
  return async (workerId: number): Promise<boolean> => {
    const allowed = mayLeaveIdle({ workerId, queue, minInstances, workers: await fleet.listWorkers(), now: new Date() });
    if (!allowed) logger.info(`idle, but staying: one of the ${minInstances} worker(s) queue ${queue} keeps`);
    return allowed;
  };
}

async function endInstance(
  deps: AwsAgentDeps,
  config: AgentParameter,
  instanceId: string | undefined,
  logger: AgentLogger,
): Promise<AwsAgentResult['ended']> {
  try {
    await (deps.shutdown ?? runShutdown)();
    logger.info('idle: shutting the instance down');
    return 'shutdown';
  } catch (error) {
    logger.warn('shutdown was refused; terminating the instance through EC2 instead', { error: String(error) });
  }
  if (instanceId === undefined) {
    logger.error('cannot end the instance: its id is unknown');
    return undefined;
  }
  // The EC2 client is loaded only here, at the end of an instance's life, through aws/ec2-fleet, whose named
  // imports let the bundler keep only the commands it sends, not all of the EC2 API.
  const { createEc2Client, terminateInstance } = await loadEc2Fleet();
  await terminateInstance(deps.ec2 ?? createEc2Client(config.region), instanceId);
  logger.info(`idle: terminated instance ${instanceId}`);
  return 'terminated';
}

/** The EC2 agent's command line: nothing, or `--run-as USER`. */
export function parseAwsAgentArgs(args: readonly string[]): { runAs?: string } {
  if (args.length === 0) return {};
  const [option, value] = args;
  if (args.length === 2 && option === '--run-as' && value !== undefined && value !== '') return { runAs: value };
  throw new ConfigError([`unexpected arguments ${JSON.stringify(args)}; the EC2 agent takes only --run-as USER`]);
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  Promise.resolve()
    .then(() => runAwsAgent({ env: process.env, ...parseAwsAgentArgs(process.argv.slice(2)) }))
    .then(
      (result) => {
        jsonLineLogger.info(`agent exited (${result.exit})`, { ended: result.ended });
        process.exit(0);
      },
      (error: unknown) => {
        // A non-zero exit makes systemd restart the agent (Restart=on-failure).
        jsonLineLogger.error('agent failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        process.exit(1);
      },
    );
}
