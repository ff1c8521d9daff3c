import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { ServerType } from '@hono/node-server';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { createHttpApp } from '../../http/http-app';
import { ensureApiClients, hashSecret, parseApiClientsSpec, verifySecret } from '../../http/api/http-auth';
import { FakeClock } from '../helpers/in-memory-store';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { basicAuth, CLIENTS, createHarness, snapshot, type ApiHarness } from './api-fixtures';

/** Every write endpoint with a body that would be valid for an admin, so only the scope can stop it. */
function writeRequests(definitionId: number, instanceId: number, tokenId: number, workerId: number) {
  return [
    { method: 'POST', path: '/v1/definitions', body: { name: 'scoped', script: 'noop:\n' }, need: 'admin' },
    { method: 'PUT', path: `/v1/definitions/${definitionId}`, body: { description: 'x' }, need: 'admin' },
    { method: 'PATCH', path: `/v1/definitions/${definitionId}`, body: { description: 'x' }, need: 'admin' },
    { method: 'DELETE', path: `/v1/definitions/${definitionId}`, need: 'admin' },
    { method: 'PATCH', path: `/v1/workers/${workerId}`, body: { suspended: true }, need: 'admin' },
    { method: 'POST', path: `/v1/definitions/${definitionId}/instances`, body: {}, need: 'launch' },
    { method: 'DELETE', path: `/v1/definitions/${definitionId}/instances/${instanceId}`, need: 'launch' },
    { method: 'POST', path: `/v1/definitions/${definitionId}/instances/${instanceId}/tokens/${tokenId}/retry`, need: 'launch' },
    { method: 'POST', path: `/v1/definitions/${definitionId}/instances/${instanceId}/tokens/${tokenId}/skip`, need: 'launch' },
  ] as const;
}

const READ_PATHS = (definitionId: number, instanceId: number) => [
  '/v1/definitions',
  `/v1/definitions/${definitionId}`,
  `/v1/definitions/${definitionId}/instances`,
  `/v1/definitions/${definitionId}/instances/${instanceId}`,
  `/v1/definitions/${definitionId}/instances/${instanceId}/logs`,
  '/v1/stats/instance',
  '/v1/stats/waiting_execution',
  '/v1/workers',
  '/v1/executions',
  '/v1/openapi.json',
];

describe('authentication, scopes, operations and limits (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  let clock: FakeClock;
  let instanceId: number;
  let tokenId: number;
  const workerId = 5_000_001;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    clock = new FakeClock(new Date('2026-03-01T00:00:00.000Z'));
    h = await createHarness(tdb, { services: servicesFor(tdb, { clock }), declaredQueues: ['declared-q'] });
    await insertDefinition(tdb.db, 1, 'execute: echo one\n', { apiAllowed: true });
    const res = await h.call('POST', '/v1/definitions/1/instances', { as: 'launch' });
    instanceId = ((await res.json()) as { id: number }).id;
    tokenId = Number((await tdb.db.selectFrom('tokens').select('id').executeTakeFirstOrThrow()).id);
    await tdb.db
      .insertInto('workers')
      .values({ id: workerId, hostname: 'host-a', queues: JSON.stringify(['@default', 'gpu']), slots: 2, pids: '{}', heartbeat_at: clock.now(), started_at: clock.now(), suspended: false, draining: false, version: 0 })
      .execute();
  });
  afterAll(async () => {
    await tdb.close();
  });

  it('401s every route but health without credentials or with wrong ones, with WWW-Authenticate: Basic', async () => {
    for (const path of READ_PATHS(1, instanceId)) {
      for (const authorization of [undefined, basicAuth(CLIENTS.admin.name, 'wrong'), basicAuth('nobody', 'x'), 'Bearer abc', 'Basic !!!']) {
        const res = await h.app.request(path, { headers: authorization ? { authorization } : {} });
        expect(res.status, `${path} ${authorization}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
        expect(await res.json()).toMatchObject({ status_code: 401, error_code: 'unauthorized' });
      }
    }
  });

  it('logs a failed attempt with the client name, never the secret', async () => {
    h.logger.lines.length = 0;
    await h.app.request('/v1/definitions', { headers: { authorization: basicAuth(CLIENTS.read.name, 'not-the-secret-xyz') } });
    const warning = h.logger.lines.find((l) => l.message === 'API authentication failed');
    expect(warning?.extra).toMatchObject({ client: CLIENTS.read.name });
    expect(JSON.stringify(h.logger.lines)).not.toContain('not-the-secret-xyz');
  });

  it('lets a read client GET everything and 403s every write, changing nothing', async () => {
    for (const path of READ_PATHS(1, instanceId)) {
      const res = await h.call('GET', path, { as: 'read' });
      expect(res.status, path).toBe(200);
    }
    const before = await snapshot(tdb);
    for (const request of writeRequests(1, instanceId, tokenId, workerId)) {
      const res = await h.call(request.method, request.path, { as: 'read', ...('body' in request ? { body: request.body } : {}) });
      expect(res.status, `${request.method} ${request.path}`).toBe(403);
      expect(await res.json()).toMatchObject({ status_code: 403, error_code: 'forbidden' });
    }
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('lets a launch client operate instances but 403s definition and worker writes', async () => {
    const before = await snapshot(tdb);
    for (const request of writeRequests(1, instanceId, tokenId, workerId).filter((r) => r.need === 'admin')) {
      const res = await h.call(request.method, request.path, { as: 'launch', ...('body' in request ? { body: request.body } : {}) });
      expect(res.status, `${request.method} ${request.path}`).toBe(403);
    }
    expect(await snapshot(tdb)).toEqual(before);
    // Not 403: the state decides (the token is working, so retry is a conflict).
    expect((await h.call('POST', `/v1/definitions/1/instances/${instanceId}/tokens/${tokenId}/retry`, { as: 'launch' })).status).toBe(409);
  });

  it('answers health without credentials', async () => {
    const res = await h.app.request('/v1/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('reports working and error instance counts, and per-queue waiting executions after three minutes', async () => {
    await insertDefinition(tdb.db, 2, 'execute: will fail\n', { apiAllowed: true });
    const failing = (await (await h.call('POST', '/v1/definitions/2/instances', { as: 'launch' })).json()) as { id: number };
    for (let i = 0; i < 3; i++) await h.services.processorPass();
    const stats = async () => (await (await h.call('GET', '/v1/stats/instance', { as: 'read' })).json()) as Record<string, number>;
    expect(await stats()).toEqual({ 'kuroko2.job_instances.working': 2, 'kuroko2.job_instances.error': 0 });
    const waiting = async () => (await (await h.call('GET', '/v1/stats/waiting_execution', { as: 'read' })).json()) as Record<string, number>;
    expect(await waiting()).toEqual({
      'kuroko2.executions.waiting.@default': 0,
      'kuroko2.executions.waiting.declared-q': 0,
      'kuroko2.executions.waiting.gpu': 0,
    });
    clock.advance(3 * 60 * 1000 + 1000);
    expect((await waiting())['kuroko2.executions.waiting.@default']).toBe(2);
    await tdb.db.updateTable('executions').set({ finished_at: clock.now(), exit_status: 1, attempt: 1, claimed_at: clock.now(), started_at: clock.now() }).where('job_instance_id', '=', failing.id).execute();
    for (let i = 0; i < 3; i++) await h.services.processorPass();
    expect(await stats()).toEqual({ 'kuroko2.job_instances.working': 1, 'kuroko2.job_instances.error': 1 });
    expect((await waiting())['kuroko2.executions.waiting.@default']).toBe(1);
  });

  it('lists unfinished executions and workers, and suspends a worker with PATCH', async () => {
    const executions = (await (await h.call('GET', '/v1/executions', { as: 'read' })).json()) as { job_instance_id: number; status: string; queue: string }[];
    expect(executions).toEqual([expect.objectContaining({ job_instance_id: instanceId, status: 'waiting', queue: '@default' })]);
    let workers = (await (await h.call('GET', '/v1/workers', { as: 'read' })).json()) as { id: number; status: string; queue: string; queues: string[]; suspended: boolean }[];
    expect(workers).toEqual([expect.objectContaining({ id: workerId, hostname: 'host-a', queue: '@default', queues: ['@default', 'gpu'], suspended: false })]);
    const res = await h.call('PATCH', `/v1/workers/${workerId}`, { body: { suspended: true } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: workerId, suspended: true, status: expect.stringMatching(/suspended|lost/) });
    workers = (await (await h.call('GET', '/v1/workers')).json()) as typeof workers;
    expect(workers[0]?.suspended).toBe(true);
    expect((await h.call('PATCH', '/v1/workers/987654', { body: { suspended: true } })).status).toBe(404);
    expect((await h.call('PATCH', `/v1/workers/${workerId}`, { body: { suspended: 'perhaps' } })).status).toBe(400);
    expect((await h.call('PATCH', `/v1/workers/${workerId}`, { body: {} })).status).toBe(422);
  });

  it('answers malformed JSON, wrong media types, unknown routes and oversized bodies with the contract body', async () => {
    const before = await snapshot(tdb);
    const cases: [RequestInit & { path?: string }, number, string][] = [
      [{ method: 'POST', body: '{"name": "x",', headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
      [{ method: 'POST', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'unsupported_media_type'],
      [{ method: 'POST', body: JSON.stringify({ name: 'x', script: 'y'.repeat(2 * 1024 * 1024) }), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large'],
      [{ method: 'POST', body: JSON.stringify({ name: 'x', script: 'noop:\n'.repeat(20_000) }), headers: { 'content-type': 'application/json' } }, 422, 'unprocessable_entity'],
      [{ method: 'GET', path: '/v1/nothing-here' }, 404, 'record_not_found'],
    ];
    for (const [init, status, code] of cases) {
      const { path = '/v1/definitions', ...rest } = init;
      const res = await h.app.request(path, { ...rest, headers: { ...(rest.headers as Record<string, string>), authorization: basicAuth(CLIENTS.admin.name, CLIENTS.admin.secret) } });
      expect(res.status, `${status} ${code}`).toBe(status);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status_code: status, error_code: code });
      expect(typeof body.message).toBe('string');
    }
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('hides internal errors behind a generic 500 and logs them', async () => {
    const broken = createHttpApp({
      services: h.services,
      logger: h.logger,
      queries: { instanceStats: () => Promise.reject(new Error('connection string secret=hunter2')) } as never,
    });
    h.logger.lines.length = 0;
    const res = await broken.request('/v1/stats/instance', { headers: { authorization: basicAuth(CLIENTS.read.name, CLIENTS.read.secret) } });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ status_code: 500, error_code: 'internal_server_error', message: 'internal server error' });
    expect(text).not.toContain('hunter2');
    expect(h.logger.lines.some((l) => l.level === 'ERROR' && JSON.stringify(l.extra).includes('hunter2'))).toBe(true);
  });

  it('publishes a valid OpenAPI 3 document listing every route', async () => {
    const doc = (await (await h.call('GET', '/v1/openapi.json', { as: 'read' })).json()) as { paths: Record<string, Record<string, unknown>> };
    const validator = new Validator();
    const result = await validator.validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        'GET /v1/definitions',
        'POST /v1/definitions',
        'GET /v1/definitions/{id}',
        'PUT /v1/definitions/{id}',
        'PATCH /v1/definitions/{id}',
        'DELETE /v1/definitions/{id}',
        'POST /v1/definitions/{id}/instances',
        'GET /v1/definitions/{id}/instances',
        'GET /v1/definitions/{id}/instances/{instance_id}',
        'DELETE /v1/definitions/{id}/instances/{instance_id}',
        'GET /v1/definitions/{id}/instances/{instance_id}/logs',
        'GET /v1/definitions/{id}/instances/{instance_id}/executions/{execution_id}/output',
        'POST /v1/definitions/{id}/instances/{instance_id}/tokens/{token_id}/retry',
        'POST /v1/definitions/{id}/instances/{instance_id}/tokens/{token_id}/skip',
        'GET /v1/stats/instance',
        'GET /v1/stats/waiting_execution',
        'GET /v1/workers',
        'GET /v1/api_clients',
        'DELETE /v1/api_clients/{name}',
        'POST /v1/api_clients/{name}/rotate',
        'PATCH /v1/workers/{id}',
        'GET /v1/executions',
        'GET /v1/health',
        'GET /v1/openapi.json',
      ].sort(),
    );
  });
});

describe('over real HTTP (sqlite, @hono/node-server on loopback)', () => {
  let tdb: TestDatabase;
  let server: ServerType;
  let base: string;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    const h = await createHarness(tdb);
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

  it('launches and reads back an instance, and refuses a body larger than the limit by its Content-Length', async () => {
    const auth = { authorization: basicAuth(CLIENTS.launch.name, CLIENTS.launch.secret), 'content-type': 'application/json' };
    const res = await fetch(`${base}/v1/definitions/1/instances`, { method: 'POST', headers: auth, body: JSON.stringify({ env: { A: 'b' } }) });
    expect(res.status).toBe(201);
    const instance = (await res.json()) as { id: number; status: string };
    expect(instance.status).toBe('working');
    const got = await fetch(`${base}/v1/definitions/1/instances/${instance.id}`, { headers: auth });
    expect(((await got.json()) as { id: number }).id).toBe(instance.id);
    const health = await fetch(`${base}/v1/health`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const huge = await fetch(`${base}/v1/definitions/1/instances`, { method: 'POST', headers: auth, body: `{"env":{"A":"${'x'.repeat(1024 * 1024 + 10)}"}}` });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ status_code: 413 });
    const unauthorized = await fetch(`${base}/v1/definitions`);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('www-authenticate')).toMatch(/^Basic/);
  });
});

describe('health without a database', () => {
  it('answers 503 once the database stops answering', async () => {
    const tdb = await createTestDatabase('sqlite');
    const handle = tdb.openAnother();
    const app = createHttpApp({ services: servicesFor({ ...tdb, db: handle.db }), logger: { info: () => undefined, warn: () => undefined, error: () => undefined } });
    expect((await app.request('/v1/health')).status).toBe(200);
    await handle.close();
    const res = await app.request('/v1/health');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status_code: 503 });
    await tdb.close();
  });
});

describe('API client secrets', () => {
  it('hashes with scrypt and a per-secret salt, verifies, and refuses malformed or unsafe hashes', async () => {
    const a = await hashSecret('s3cret');
    const b = await hashSecret('s3cret');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(a).not.toBe(b);
    expect(await verifySecret('s3cret', a)).toBe(true);
    expect(await verifySecret('s3cret!', a)).toBe(false);
    for (const bad of ['', 'plain', 'scrypt$16384$8$1$$', 'scrypt$1073741824$8$1$c2FsdA$aGFzaA', 'scrypt$1000$8$1$c2FsdA$aGFzaA']) {
      expect(await verifySecret('s3cret', bad)).toBe(false);
    }
  });

  it('parses KUROKO_API_CLIENTS (admin by default, a secret may hold colons) and lists every bad entry', () => {
    expect(parseApiClientsSpec('ci:abcdefghijklmnop, viewer:p:q-0123456789abc:read ,ops:x123456789abcdef:admin')).toEqual([
      { name: 'ci', secret: 'abcdefghijklmnop', scope: 'admin' },
      { name: 'viewer', secret: 'p:q-0123456789abc', scope: 'read' },
      { name: 'ops', secret: 'x123456789abcdef', scope: 'admin' },
    ]);
    expect(() => parseApiClientsSpec('nosecret,bad name:x123456789abcdef,ci:a123456789abcdef,ci:b123456789abcdef')).toThrow(/entry 1[\s\S]*entry 2[\s\S]*entry 4/);
  });

  it('ensureApiClients creates, then updates a changed secret or scope', async () => {
    const tdb = await createTestDatabase('sqlite');
    const services = servicesFor(tdb);
    const repo = new ApiClientRepository(tdb.db, services.ids, services.clock);
    await ensureApiClients(repo, 'ci:first-secret-0001');
    const first = await repo.findByName('ci');
    await ensureApiClients(repo, 'ci:first-secret-0001');
    expect((await repo.findByName('ci'))?.secretHash).toBe(first?.secretHash);
    await ensureApiClients(repo, 'ci:second-secret-001:read');
    const changed = await repo.findByName('ci');
    expect(changed?.scope).toBe('read');
    expect(await verifySecret('second-secret-001', changed?.secretHash ?? '')).toBe(true);
    await tdb.close();
  });
});
