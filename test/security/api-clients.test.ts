/**
 * Issue 13, finding 6 (API clients): clients could not be listed, revoked or rotated without SQL, any secret length
 * was accepted, and failed logins had no limit outside API Gateway.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runApiClient } from '../../cli/api-client-command';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { parseApiClientsSpec } from '../../http/api/http-auth';
import { basicAuth, CLIENTS, createHarness, type ApiHarness } from '../api/api-fixtures';
import { servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('API clients (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb, { loginLimits: { perClient: { maxFailures: 3, windowMs: 60_000 }, perAddress: { maxFailures: 5, windowMs: 60_000 } } });
  });
  afterEach(async () => {
    await tdb.close();
  });

  it('lists, rotates and revokes clients through admin-scope routes; the old secret stops working at once', async () => {
    expect((await h.call('GET', '/v1/api_clients', { as: 'launch' })).status).toBe(403);
    const list = (await (await h.call('GET', '/v1/api_clients')).json()) as { name: string; scope: string }[];
    expect(list.map((c) => `${c.name}:${c.scope}`)).toEqual(['batch-launcher:launch', 'dashboard:read', 'ops-admin:admin']);
    expect(JSON.stringify(list)).not.toContain('scrypt');

    expect((await h.call('GET', '/v1/stats/instance', { as: 'read' })).status).toBe(200);
    const rotated = await h.call('POST', `/v1/api_clients/${CLIENTS.read.name}/rotate`);
    expect(rotated.status).toBe(200);
    const { secret } = (await rotated.json()) as { secret: string };
    expect(secret.length).toBeGreaterThanOrEqual(16);
    expect((await h.call('GET', '/v1/stats/instance', { as: 'read' })).status).toBe(401);
    const fresh = await h.app.request('/v1/stats/instance', { headers: { authorization: basicAuth(CLIENTS.read.name, secret) } });
    expect(fresh.status).toBe(200);

    expect((await h.call('DELETE', `/v1/api_clients/${CLIENTS.launch.name}`, { as: 'launch' })).status).toBe(403);
    expect((await h.call('DELETE', `/v1/api_clients/${CLIENTS.launch.name}`)).status).toBe(204);
    expect((await h.call('GET', '/v1/stats/instance', { as: 'launch' })).status).toBe(401);
    expect((await h.call('DELETE', '/v1/api_clients/nobody')).status).toBe(404);
  });

  it('answers 429 with Retry-After after too many failures for a name, even with the right secret, without verifying it', async () => {
    const wrong = { authorization: basicAuth(CLIENTS.read.name, 'wrong-secret-000000') };
    for (let i = 0; i < 3; i++) expect((await h.app.request('/v1/stats/instance', { headers: wrong })).status).toBe(401);
    const limited = await h.call('GET', '/v1/stats/instance', { as: 'read' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error_code: string }).error_code).toBe('too_many_requests');
    // Another client is not affected.
    expect((await h.call('GET', '/v1/stats/instance', { as: 'launch' })).status).toBe(200);
  });

  // The peer as @hono/node-server (kuroko server) and hono/aws-lambda (API Gateway's sourceIp) hand it over.
  const peers = {
    'node server': (ip: string) => ({ incoming: { socket: { remoteAddress: ip } } }),
    'API Gateway': (ip: string) => ({ requestContext: { http: { sourceIp: ip } } }),
  };
  for (const [runtime, envOf] of Object.entries(peers)) {
    it(`limits failures per address across names (${runtime})`, async () => {
      for (let i = 0; i < 5; i++) {
        const res = await h.app.request('/v1/stats/instance', { headers: { authorization: basicAuth(`guess-${i}`, 'wrong-secret-000000') } }, envOf('203.0.113.7'));
        expect(res.status).toBe(401);
      }
      const right = { authorization: basicAuth(CLIENTS.admin.name, CLIENTS.admin.secret) };
      expect((await h.app.request('/v1/stats/instance', { headers: right }, envOf('203.0.113.7'))).status).toBe(429);
      expect((await h.app.request('/v1/stats/instance', { headers: right }, envOf('198.51.100.1'))).status).toBe(200);
    });
  }

  it('refuses KUROKO_API_CLIENTS secrets shorter than 16 characters', () => {
    expect(() => parseApiClientsSpec('ci:s3cret:launch')).toThrow(/at least 16 characters/);
    expect(parseApiClientsSpec('ci:0123456789abcdef:launch')).toEqual([{ name: 'ci', secret: '0123456789abcdef', scope: 'launch' }]);
  });

  it('kuroko api-client list | rotate | revoke', async () => {
    const out = { stdout: '', stderr: '' };
    const io = { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) };
    expect(await runApiClient(['list', '--database-url', tdb.url], io, {})).toBe(0);
    expect(out.stdout).toMatch(/^batch-launcher\tlaunch\t/m);
    out.stdout = '';
    expect(await runApiClient(['rotate', CLIENTS.admin.name, '--database-url', tdb.url], io, {})).toBe(0);
    expect(out.stdout.trim()).toMatch(/^[\w-]{40,}$/);
    expect((await h.call('GET', '/v1/stats/instance')).status).toBe(401);
    expect(await runApiClient(['revoke', CLIENTS.read.name, '--database-url', tdb.url], io, {})).toBe(0);
    const services = servicesFor(tdb);
    expect(await new ApiClientRepository(tdb.db, services.ids, services.clock).findByName(CLIENTS.read.name)).toBeUndefined();
    expect(await runApiClient(['revoke', 'nobody', '--database-url', tdb.url], io, {})).toBe(1);
  });
});
