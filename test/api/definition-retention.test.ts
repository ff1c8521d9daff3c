/**
 * The per-definition retention setting (`retention_days`, migration 0008) through the API and the console form:
 * absent or null follows the global policy, 0 keeps forever, out-of-range values are refused with 422.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSession, newSession, SESSION_COOKIE } from '../../http/console/console-session';
import type { ConsoleConfig } from '../../http/console/console-config';
import { SessionRepository } from '../../db/repositories/session-repository';
import { createHttpApp } from '../../http/http-app';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { createHarness, recordingLogger, type ApiHarness } from './api-fixtures';

const SCRIPT = 'execute: echo hello\n';
const SECRET = 'a-console-secret-for-tests-only-0123456789';
const ADMIN = 'boss@example.com';

describe('retention_days on definitions (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
  });
  afterAll(async () => {
    await tdb.close();
  });

  const stored = async (id: number) =>
    (await tdb.db.selectFrom('job_definitions').select('retention_days').where('id', '=', id).executeTakeFirstOrThrow()).retention_days;

  it('defaults to null (the global policy), takes a number, keeps it when absent, and resets with null', async () => {
    let res = await h.call('POST', '/v1/definitions', { body: { name: 'default', script: SCRIPT } });
    expect(res.status).toBe(201);
    const plain = (await res.json()) as { id: number; retention_days: unknown };
    expect(plain.retention_days).toBeNull();
    expect(await stored(plain.id)).toBeNull();

    res = await h.call('POST', '/v1/definitions', { body: { name: 'short', script: SCRIPT, retention_days: 7 } });
    expect(res.status).toBe(201);
    const short = (await res.json()) as { id: number; retention_days: unknown };
    expect(short.retention_days).toBe(7);
    expect(Number(await stored(short.id))).toBe(7);

    const read = async (id: number) => ((await (await h.call('GET', `/v1/definitions/${id}`, { as: 'read' })).json()) as { retention_days: unknown }).retention_days;
    const patch = async (id: number, body: Record<string, unknown>) => {
      const r = await h.call('PATCH', `/v1/definitions/${id}`, { body });
      expect(r.status, await r.clone().text()).toBeLessThan(300);
    };
    await patch(short.id, { description: 'unrelated change' });
    expect(await read(short.id)).toBe(7);
    await patch(short.id, { retention_days: 0 });
    expect(await read(short.id)).toBe(0);
    await patch(short.id, { retention_days: null });
    expect(await read(short.id)).toBeNull();
    expect(await stored(short.id)).toBeNull();
  });

  it('refuses negative, fractional and too long retention naming the field', async () => {
    for (const retention_days of [-1, 1.5, 36_501, 'soon']) {
      const res = await h.call('POST', '/v1/definitions', { body: { name: `bad ${String(retention_days)}`, script: SCRIPT, retention_days } });
      expect([400, 422]).toContain(res.status);
      expect(await res.text()).toContain('retention_days');
    }
  });

  it('the console form sets it, shows it and clears it', async () => {
    const config: ConsoleConfig = { secret: SECRET, oidc: undefined, admins: [ADMIN], localSignIn: false, baseUrl: undefined };
    const app = createHttpApp({ services: h.services, logger: recordingLogger(), console: { config } });
    const session = newSession(ADMIN, 'Boss', Date.now());
    await new SessionRepository(tdb.db, h.services.clock).create(session.sid, session.email, new Date(session.expiresAt));
    const cookie = `${SESSION_COOKIE}=${encodeSession(SECRET, session)}`;
    const post = (path: string, body: Record<string, string>) =>
      app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ ...body, _csrf: session.csrf }).toString(),
      });

    const form = await app.request('/definitions/new', { headers: { cookie } });
    expect(await form.text()).toContain('name="retention_days"');

    let res = await post('/definitions', { name: 'from the console', script: SCRIPT, retention_days: '30' });
    expect(res.status).toBe(303);
    const id = Number(/\/definitions\/(\d+)/.exec(res.headers.get('location') ?? '')?.[1]);
    expect(Number(await stored(id))).toBe(30);
    const edit = await (await app.request(`/definitions/${id}/edit`, { headers: { cookie } })).text();
    expect(edit).toMatch(/name="retention_days" value="30"/);
    const page = await (await app.request(`/definitions/${id}`, { headers: { cookie } })).text();
    expect(page).toContain('kept 30 days');

    res = await post('/definitions', { name: 'bad retention', script: SCRIPT, retention_days: '-3' });
    expect(res.status).toBe(422);
    expect(await res.text()).toContain('id="err-retention_days"');
  });
});
