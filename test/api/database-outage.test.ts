/**
 * A database outage in self-hosted mode: `kuroko server`'s runtime on MariaDB, reached through a TCP relay that the
 * test cuts (listener closed, every relayed connection destroyed) and brings back on the same port. While the
 * database cannot be reached the API answers 503 with Retry-After (not a generic 500), and once it is back the
 * same server answers 200 again without a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_INTERVALS, startRuntime, type Runtime } from '../../cli/runtime/kuroko-runtime';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { ensureApiClients } from '../../http/api/http-auth';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { basicAuth } from './api-fixtures';

/** A TCP relay to host:port that can be cut and restored on the same port. */
function tcpRelay(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = () =>
    new Promise<number>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const address = s.address();
        port = typeof address === 'object' && address ? address.port : port;
        server = s;
        resolve(port);
      });
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return { open, cut };
}

let tdb: TestDatabase;
let relay: ReturnType<typeof tcpRelay>;
let runtime: Runtime | undefined;
let logDir: string;
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const CLIENT = { name: 'ops-admin', secret: 'admin-secret-0123456789' };

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  logDir = mkdtempSync(join(tmpdir(), 'kuroko-outage-'));
});
afterAll(async () => {
  await runtime?.stop();
  await relay?.cut();
  await tdb?.close();
  rmSync(logDir, { recursive: true, force: true });
});

it('answers 503 with Retry-After while MariaDB cannot be reached, and 200 again once it is back', { timeout: 120_000 }, async () => {
  const target = new URL(tdb.url);
  relay = tcpRelay({ host: target.hostname, port: Number(target.port || 3306) });
  const relayPort = await relay.open();
  const viaRelay = new URL(tdb.url);
  viaRelay.host = `127.0.0.1:${relayPort}`;
  runtime = await startRuntime({
    databaseUrl: viaRelay.toString(),
    host: '127.0.0.1',
    port: 0,
    agents: 0,
    agentSlots: 1,
    logDir,
    intervals: DEFAULT_INTERVALS,
    declaredQueues: [],
    notification: { slackWebhookUrl: undefined, webhookSecret: undefined, baseUrl: undefined },
    monitor: {},
    consoleNotifications: false,
    logger: quiet,
    prepare: (services) => ensureApiClients(new ApiClientRepository(services.handle.db, services.ids, services.clock), `${CLIENT.name}:${CLIENT.secret}`),
  });
  const get = () => fetch(`${runtime?.url}/v1/definitions`, { headers: { authorization: basicAuth(CLIENT.name, CLIENT.secret) } });

  expect((await get()).status).toBe(200);

  await relay.cut();
  const down = await get();
  expect(down.status).toBe(503);
  expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(await down.json()).toEqual({ status_code: 503, error_code: 'service_unavailable', message: 'the database is unavailable; retry later' });

  await relay.open();
  await waitFor(async () => (await get()).status === 200, { timeoutMs: 30_000, description: 'the API answering 200 again' });
});
