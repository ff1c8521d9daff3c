/**
 * A body refused with 413 is not read, so the connection it came on cannot carry another request: the answer must
 * say `Connection: close` so a pooling client (a keep-alive agent) opens a new connection for its next request
 * instead of sending it on a socket the server is about to close (a "socket hang up" on the next call).
 */
import { request as httpRequest, Agent } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { basicAuth, CLIENTS, createHarness, type ApiHarness } from './api-fixtures';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The local port of the client socket, which tells whether two requests shared a connection. */
  localPort: number | undefined;
}

function send(agent: Agent, base: string, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}${path}`,
      {
        agent,
        method,
        headers: {
          authorization: basicAuth(CLIENTS.admin.name, CLIENTS.admin.secret),
          ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), localPort: req.socket?.localPort }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // The whole body is written even if the server answers before reading it, as a real client does.
    req.end(body);
  });
}

describe('a 413 over a keep-alive connection', () => {
  let tdb: TestDatabase;
  let server: ServerType;
  let base: string;
  let h: ApiHarness;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\n', { apiAllowed: true });
    await new Promise<void>((resolve) => {
      server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await tdb.close();
  });

  it('says Connection: close, and the next request on the same agent succeeds', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Just over the default 1 MiB limit: the client has written it all when the answer arrives.
      const huge = JSON.stringify({ env: { A: 'x'.repeat(1.1 * 1024 * 1024) } });
      const refused = await send(agent, base, 'POST', '/v1/definitions/1/instances', huge);
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.body)).toMatchObject({ status_code: 413, error_code: 'payload_too_large' });
      expect(refused.headers.connection).toBe('close');
      const next = await send(agent, base, 'GET', '/v1/definitions/1');
      expect(next.status).toBe(200);
      // A small body under the limit still shares its connection with the request after it.
      const small = await send(agent, base, 'POST', '/v1/definitions/1/instances', '{}');
      expect(small.status).toBe(201);
      const after = await send(agent, base, 'GET', '/v1/definitions/1');
      expect(after.status).toBe(200);
      expect(after.localPort).toBe(small.localPort);
    } finally {
      agent.destroy();
    }
  });

  it('leaves the header out where no Node socket is ours (the Lambda adapter, behind API Gateway)', async () => {
    const res = await h.call('POST', '/v1/definitions/1/instances', { rawBody: JSON.stringify({ env: { A: 'x'.repeat(1.1 * 1024 * 1024) } }) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBeNull();
  });
});
