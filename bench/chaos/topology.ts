/**
 * The processes of a run: `kuroko dev`, `kuroko server` and `kuroko agent` as child processes (bin/kuroko.js), the
 * EC2 agent, and the API control over HTTP (launches with Idempotency-Key, retry and skip of tokens).
 */
import { join } from 'node:path';
import type { AgentParameter } from '../../app/config/config-schemas';
import { ENV_KEYS } from '../../app/config/env-keys';
import { startDataApiServer } from '../../test/helpers/data-api-server';
import { startFakeAws, type FakeAws } from '../../test/helpers/fake-aws-server';
import { AGENT_RESTART_SECONDS } from '../../cdk/constructs/agent-unit';
import { KUROKO_BIN, ROOT, poll, spawnTracked, type RestartOnFailure, type TrackOptions, type Tracked } from './processes';
import type { Control } from './workload';

export const API_CLIENT = { name: 'chaos', secret: 'chaos-admin-secret-0123' };

/**
 * Monitor thresholds short enough for a run of minutes, in the defaults' proportions: a worker is judged lost only
 * after its leases (60 s) ran out and its commands were killed (10 s grace).
 */
export const FAST_MONITOR: Record<string, string> = {
  KUROKO_MONITOR_INTERVAL_SECONDS: '1',
  KUROKO_AGENT_HEARTBEAT_SECONDS: '1',
  KUROKO_PROCESS_ABSENCE_SECONDS: '5',
  KUROKO_WORKER_LOST_SECONDS: '75',
  KUROKO_ASSIGNMENT_DELAY_SECONDS: '60',
  KUROKO_API_CLIENTS: `${API_CLIENT.name}:${API_CLIENT.secret}`,
};

const AUTHORIZATION = `Basic ${Buffer.from(`${API_CLIENT.name}:${API_CLIENT.secret}`).toString('base64')}`;
const CALL_TIMEOUT_MS = 10_000;

/** The control over the API at whatever URL `baseUrl()` answers now (a restarted `kuroko dev` has a new port). */
export function httpControl(baseUrl: () => string | undefined): Control {
  const call = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { id?: number } }> => {
    const url = baseUrl();
    if (url === undefined) return { status: 0, body: {} };
    const response = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: AUTHORIZATION, 'content-type': 'application/json', ...headers },
      body: '{}',
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as { id?: number }) : {} };
  };
  return {
    async launch(definitionId, key) {
      const answer = await call(`/v1/definitions/${definitionId}/instances`, key ? { 'idempotency-key': key } : {}).catch(() => undefined);
      return answer && answer.status >= 200 && answer.status < 300 ? answer.body.id : undefined;
    },
    async retry(instanceId, tokenId, definitionId) {
      await call(`/v1/definitions/${definitionId}/instances/${instanceId}/tokens/${tokenId}/retry`);
    },
    async skip(instanceId, tokenId, definitionId) {
      await call(`/v1/definitions/${definitionId}/instances/${instanceId}/tokens/${tokenId}/skip`);
    },
  };
}

export interface ApiProcess {
  process: Tracked;
  url: string;
}

/** Waits for the "listening on" line of a dev/server process. */
async function listening(process: Tracked, what: string): Promise<string> {
  const url = await poll(() => /listening on (http:\/\/\S+)/.exec(process.output())?.[1] ?? (process.alive() ? undefined : 'exited'), 60_000, 100);
  if (url === undefined || url === 'exited') throw new Error(`${what} did not start: ${process.output().slice(-800)}`);
  return url;
}

/** `kuroko dev` on a data dir (its SQLite database and command logs), on `port`, with in-process agents. */
export async function startDev(dataDir: string, port: number, env: Record<string, string> = {}): Promise<ApiProcess> {
  const process_ = spawnTracked('kuroko dev', process.execPath, [KUROKO_BIN, 'dev', '--port', String(port), '--data-dir', dataDir], {
    env: { ...process.env, ...FAST_MONITOR, ...env },
  });
  return { process: process_, url: await listening(process_, 'kuroko dev') };
}

/** `kuroko server` on a database, without in-process agents. */
export async function startServer(databaseUrl: string, env: Record<string, string> = {}): Promise<ApiProcess> {
  const process_ = spawnTracked('kuroko server', process.execPath, [KUROKO_BIN, 'server', '--database-url', databaseUrl, '--port', '0', '--host', '127.0.0.1', '--agents', '0'], {
    env: { ...process.env, ...FAST_MONITOR, ...env },
  });
  return { process: process_, url: await listening(process_, 'kuroko server') };
}

/** Agents come back after a failure as the EC2 agent's systemd unit brings it back (processes.ts, RestartOnFailure). */
function restartedLikeSystemd(onRestart: RestartOnFailure['onRestart']): TrackOptions {
  return { restartOnFailure: { delayMs: AGENT_RESTART_SECONDS * 1000, onRestart } };
}

export interface AgentSpec {
  hostname: string;
  databaseUrl: string;
  logDir: string;
  queues?: string[];
  slots?: number;
  env?: Record<string, string>;
  /** Told of each restart after a failure (the scenario logs and counts them). */
  onRestart: RestartOnFailure['onRestart'];
}

/** `kuroko agent` as a separate host: its own hostname and log dir, heart-beating every second. */
export function startAgent(spec: AgentSpec): Tracked {
  const queues = (spec.queues ?? []).flatMap((q) => ['--queue', q]);
  return spawnTracked(`agent ${spec.hostname}`, process.execPath, [
    KUROKO_BIN,
    'agent',
    '--database-url',
    spec.databaseUrl,
    '--hostname',
    spec.hostname,
    '--log-dir',
    spec.logDir,
    '--heartbeat-interval',
    '1',
    '--slots',
    String(spec.slots ?? 8),
    ...queues,
  ], { env: { ...process.env, ...spec.env } }, restartedLikeSystemd(spec.onRestart));
}

/** An agent's own log folder under the scenario's folder. */
export function agentLogDir(dir: string, hostname: string): string {
  return join(dir, `logs-${hostname}`);
}

export interface Ec2Agent {
  process: Tracked;
  aws: FakeAws;
  close(): Promise<void>;
}

/**
 * The EC2 agent (agent/main.ts from the sources) on `mysqlUrl`'s database through a Data API stand-in of its own,
 * with SSM, Lambda and CloudWatch Logs faked on loopback (its command output goes to CloudWatch Logs).
 */
export async function startEc2Agent(mysqlUrl: string, queue: string, onRestart: RestartOnFailure['onRestart']): Promise<Ec2Agent> {
  const dataApi = await startDataApiServer({ mysqlUrl });
  const parameter: AgentParameter = {
    stage: 'chaos',
    region: 'us-east-1',
    database: { clusterArn: dataApi.resourceArn, secretArn: dataApi.secretArn, databaseName: new URL(mysqlUrl).pathname.slice(1), endpoint: dataApi.endpoint },
    queue,
    slots: 8,
    idleMinutes: 60,
    executionLogGroupName: '/kuroko/chaos/executions',
    processorFunctionName: 'kuroko-chaos-processor',
    shutdownWhenIdle: false,
  };
  const aws = await startFakeAws(JSON.stringify(parameter));
  const agent = spawnTracked('ec2 agent', process.execPath, ['--import', 'tsx', join(ROOT, 'agent/main.ts')], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      [ENV_KEYS.agentConfigParameter]: '/kuroko/chaos/agent-config',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'chaos',
      AWS_SECRET_ACCESS_KEY: 'chaos-secret-key',
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  }, restartedLikeSystemd(onRestart));
  return {
    process: agent,
    aws,
    async close() {
      await agent.stop('SIGTERM');
      await aws.close();
      await dataApi.close();
    },
  };
}
