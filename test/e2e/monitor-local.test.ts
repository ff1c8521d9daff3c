/**
 * Nothing hangs unnoticed, nothing is announced twice (issue 8), with real processes: the local mode and
 * `kuroko server` + `kuroko agent`, a webhook served by the test, and commands killed from outside.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPidAlive } from '../../agent/proc';
import { startLocalMode, type LocalModeProcess } from '../helpers/local-mode-process';
import { createMysqlDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WEBHOOK_SECRET = 'e2e-webhook-secret';
/** Short thresholds so the monitor acts within seconds. */
const FAST_MONITOR = {
  KUROKO_MONITOR_INTERVAL_SECONDS: '1',
  KUROKO_AGENT_HEARTBEAT_SECONDS: '1',
  KUROKO_PROCESS_ABSENCE_SECONDS: '2',
  KUROKO_WORKER_LOST_SECONDS: '4',
  KUROKO_ASSIGNMENT_DELAY_SECONDS: '2',
  KUROKO_WEBHOOK_SECRET: WEBHOOK_SECRET,
};
/** After the first delivery, how long to keep watching for a duplicate: several monitor and notifier passes. */
const DUPLICATE_WATCH_MS = 5_000;

interface Delivery {
  action: string;
  job_instance?: { id: number };
  headers: Record<string, string | string[] | undefined>;
  signatureValid: boolean;
}

interface InstanceDetail {
  id: number;
  status: string;
  tokens: { id: number; status: string }[];
  executions: { id: number; pid: number | null; finished_at: string | null }[];
}

let webhook: Server;
let webhookUrl: string;
const deliveries: Delivery[] = [];

beforeAll(async () => {
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as Omit<Delivery, 'headers' | 'signatureValid'>;
      const expected = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;
      deliveries.push({ ...parsed, headers: req.headers, signatureValid: req.headers['x-kuroko2-signature'] === expected });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => webhook.close(() => resolve()));
});

const processes: { stop(signal?: NodeJS.Signals): Promise<unknown>; cleanup?(): void }[] = [];
const groups: number[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) {
    await p.stop('SIGKILL');
    p.cleanup?.();
  }
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function deliveriesFor(instanceId: number, action?: string): Delivery[] {
  return deliveries.filter((d) => d.job_instance?.id === instanceId && (action === undefined || d.action === action));
}

async function defineAndLaunch(dev: Pick<LocalModeProcess, 'api'>, script: string): Promise<{ definitionId: number; instanceId: number }> {
  const created = await dev.api<{ id: number }>('/v1/definitions', {
    method: 'POST',
    body: { name: `e2e ${Date.now()}`, script, api_allowed: true, webhook_url: webhookUrl, prevent_multi: 0 },
  });
  expect(created.status).toBe(201);
  const launched = await dev.api<{ id: number }>(`/v1/definitions/${created.body.id}/instances`, { method: 'POST', body: {} });
  expect(launched.status).toBe(201);
  return { definitionId: created.body.id, instanceId: launched.body.id };
}

async function detail(dev: Pick<LocalModeProcess, 'api'>, definitionId: number, instanceId: number): Promise<InstanceDetail> {
  return (await dev.api<InstanceDetail>(`/v1/definitions/${definitionId}/instances/${instanceId}`)).body;
}

async function runningPid(dev: Pick<LocalModeProcess, 'api'>, definitionId: number, instanceId: number): Promise<number> {
  return waitFor(async () => (await detail(dev, definitionId, instanceId)).executions.find((e) => e.pid !== null)?.pid, {
    timeoutMs: 20_000,
    description: 'the command to start',
  });
}

/** Waits for the first matching delivery, then watches a while longer to prove there is no second one. */
async function exactlyOne(instanceId: number, actions: string[]): Promise<Delivery> {
  await waitFor(() => deliveries.some((d) => d.job_instance?.id === instanceId && actions.includes(d.action)), {
    timeoutMs: 30_000,
    description: `a ${actions.join(' or ')} delivery for instance ${instanceId}`,
  });
  await new Promise((resolve) => setTimeout(resolve, DUPLICATE_WATCH_MS));
  const matching = deliveriesFor(instanceId).filter((d) => actions.includes(d.action));
  expect(matching).toHaveLength(1);
  return matching[0]!;
}

describe('monitor and notifications with real processes', () => {
  it('a command killed from outside while its agent lives ends as one failure, signal recorded, no absence alert', async () => {
    const dev = await startLocalMode({ env: FAST_MONITOR });
    processes.push(dev);
    const { definitionId, instanceId } = await defineAndLaunch(dev, 'execute: sleep 300\n');
    const pid = await runningPid(dev, definitionId, instanceId);
    groups.push(pid);
    process.kill(-pid, 'SIGTERM');
    const failure = await exactlyOne(instanceId, ['notify_failure']);
    expect(failure.signatureValid).toBe(true);
    expect(failure.headers['x-kuroko2-id']).toBeTruthy();
    expect(deliveriesFor(instanceId).filter((d) => /absence|not_assigned|worker_lost/.test(d.action))).toEqual([]);
    const instance = await detail(dev, definitionId, instanceId);
    expect(instance.status).toBe('error');
    const logs = await dev.api<{ message: string }[]>(`/v1/definitions/${definitionId}/instances/${instanceId}/logs`);
    expect(logs.body.some((l) => l.message.includes('`sleep 300` was stopped by SIGTERM'))).toBe(true);
  }, 90_000);

  it('the whole process killed with its command, then restarted: one lost alert, the instance in error, the token retryable', async () => {
    let dev = await startLocalMode({ env: FAST_MONITOR });
    processes.push(dev);
    const { definitionId, instanceId } = await defineAndLaunch(dev, 'execute: sleep 300\n');
    const pid = await runningPid(dev, definitionId, instanceId);
    const killGroup = (pgid: number) => {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch (error) {
        throw new Error(`kill -${pgid} failed (dev pid ${dev.child.pid}, command pid ${pid})`, { cause: error });
      }
    };
    killGroup(dev.child.pid!);
    killGroup(pid);
    await waitFor(() => !isPidAlive(pid), { timeoutMs: 10_000, description: 'the command to die' });
    await dev.stop('SIGKILL');
    dev = await startLocalMode({ env: FAST_MONITOR, dataDir: dev.dataDir });
    processes.push(dev);
    const alert = await exactlyOne(instanceId, ['notify_process_absence', 'notify_worker_lost']);
    expect(alert.signatureValid).toBe(true);
    await waitFor(async () => (await detail(dev, definitionId, instanceId)).status === 'error', {
      timeoutMs: 20_000,
      description: 'the instance to be in error',
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n--- kuroko dev stderr ---\n${dev.stderr().slice(-4000)}`);
    });
    const instance = await detail(dev, definitionId, instanceId);
    const token = instance.tokens.find((t) => t.status === 'failure');
    expect(token).toBeDefined();
    const retried = await dev.api(`/v1/definitions/${definitionId}/instances/${instanceId}/tokens/${token!.id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(200);
  }, 120_000);

  it('with no agents running, a launched job raises exactly one not_assigned', async () => {
    const dev = await startLocalMode({ env: FAST_MONITOR, args: ['--agents', '0'] });
    processes.push(dev);
    const { instanceId } = await defineAndLaunch(dev, 'execute: echo never\n');
    const alert = await exactlyOne(instanceId, ['notify_not_assigned']);
    expect(alert.signatureValid).toBe(true);
  }, 90_000);

  it('an agent on another host killed with SIGKILL: one worker_lost, and its token fails', async () => {
    const mysql = await createMysqlDatabase();
    const databaseUrl = mysql.url;
    const server = await startServer(databaseUrl);
    processes.push({ stop: server.stop, cleanup: () => void mysql.drop() });
    const logDir = mkdtempSync(join(tmpdir(), 'kuroko-e2e-agent-logs-'));
    const agent = spawnAgent(databaseUrl, logDir);
    processes.push({ stop: async (signal) => agent.kill(signal ?? 'SIGKILL'), cleanup: () => rmSync(logDir, { recursive: true, force: true }) });
    const { definitionId, instanceId } = await defineAndLaunch(server, 'execute: sleep 300\n');
    const pid = await runningPid(server, definitionId, instanceId);
    groups.push(pid);
    agent.kill('SIGKILL');
    const alert = await exactlyOne(instanceId, ['notify_worker_lost']);
    expect(alert.signatureValid).toBe(true);
    await waitFor(async () => (await detail(server, definitionId, instanceId)).tokens.some((t) => t.status === 'failure'), {
      timeoutMs: 20_000,
      description: 'the token to fail',
    });
  }, 120_000);
});

/** `kuroko server` on MariaDB with the fast monitor and no in-process agents. */
async function startServer(databaseUrl: string): Promise<Pick<LocalModeProcess, 'api' | 'stop'>> {
  const secret = 'e2e-admin-secret';
  const child = spawn(process.execPath, [join(ROOT, 'bin/kuroko.js'), 'server', '--database-url', databaseUrl, '--port', '0', '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: { ...process.env, ...FAST_MONITOR, KUROKO_API_CLIENTS: `admin:${secret}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => process.env.E2E_DEBUG && process.stderr.write(chunk));
  const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], { timeoutMs: 30_000, description: 'kuroko server to start' });
  const authorization = `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null) child.kill(signal);
      return exited as Promise<number | null>;
    },
    async api(path, init = {}) {
      const response = await fetch(`${url}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization, 'content-type': 'application/json' },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
  };
}

/** `kuroko agent` as another host's; its command logs go to `logDir` (this run's own, not a folder runs share). */
function spawnAgent(databaseUrl: string, logDir: string): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin/kuroko.js'), 'agent', '--database-url', databaseUrl, '--hostname', 'other-host', '--heartbeat-interval', '1'], {
    cwd: ROOT,
    env: { ...process.env, KUROKO_LOG_DIR: logDir },
    stdio: 'ignore',
  });
  return child;
}
