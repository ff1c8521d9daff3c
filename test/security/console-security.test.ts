/**
 * Issue 13, finding 4 and the console half of 6: return paths that browsers read as another origin, a session cookie
 * that outlived its sign-out, `?logs=1e400` answering 500 and ids past 2^53. Real HTTP app, real SQLite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { SessionRepository } from '../../db/repositories/session-repository';
import { safeReturnTo } from '../../http/console/return-to';
import { encodeSession, newSession, SESSION_COOKIE } from '../../http/console/console-session';
import type { ConsoleConfig } from '../../http/console/console-config';
import { LocalSignIn } from '../../http/console/local-sign-in';
import { createHttpApp } from '../../http/http-app';
import type { App } from '../../http/api/http-routes';
import { recordingLogger } from '../api/api-fixtures';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const CONFIG: ConsoleConfig = { secret: 'a-console-secret-for-security-tests-0123456789', oidc: undefined, admins: [], localSignIn: true, baseUrl: undefined };

describe('safeReturnTo', () => {
  it('refuses every path a browser would resolve to another origin', () => {
    for (const evil of ['/%09/evil.com', '/\t/evil.com', '/\n/evil.com', '/\r\n/evil.com', '//evil.com', '/\\evil.com', '/\\/evil.com', '/.//evil.com', '/a/../..//evil.com', 'https://evil.com', 'evil.com', ' /x', '']) {
      expect(safeReturnTo(evil), JSON.stringify(evil)).toBe('/');
    }
  });

  it('keeps paths on this site, with their query and fragment', () => {
    expect(safeReturnTo('/definitions/3?tab=runs#latest')).toBe('/definitions/3?tab=runs#latest');
    expect(safeReturnTo('/workers')).toBe('/workers');
  });
});

describe('console sessions and bad numbers (sqlite)', () => {
  let tdb: TestDatabase;
  let app: App;
  const links = new LocalSignIn();

  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    app = createHttpApp({ services: servicesFor(tdb), logger: recordingLogger(), console: { config: CONFIG, localSignIn: links } });
    await insertDefinition(tdb.db, 5, 'noop:\n');
  });
  afterAll(async () => {
    await tdb?.close();
  });

  async function signIn(): Promise<{ cookie: string; csrf: string }> {
    const res = await app.request(`/auth/local?token=${links.issue()}`);
    expect(res.status).toBe(303);
    const cookie = /kuroko_session=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];
    if (!cookie) throw new Error('no session cookie');
    const page = await (await app.request('/workers', { headers: { cookie } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? /name="csrf-token" content="([^"]+)"/.exec(page)?.[1];
    if (!csrf) throw new Error('no CSRF token on the page');
    return { cookie, csrf };
  }

  it('ends the session on sign-out: a copy of the cookie stops working', async () => {
    const { cookie, csrf } = await signIn();
    expect((await app.request('/workers', { headers: { cookie } })).status).toBe(200);
    const out = await app.request('/sign_out', { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${encodeURIComponent(csrf)}` });
    expect(out.status).toBe(303);
    const replay = await app.request('/workers', { headers: { cookie } });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toContain('/sign_in');
  });

  it('redirects to / after sign-in when return_to is /%09/evil.com, and from the star form', async () => {
    const { cookie, csrf } = await signIn();
    const back = await app.request(`/sign_in?return_to=${encodeURIComponent('/\t/evil.com')}`, { headers: { cookie } });
    expect(back.headers.get('location')).toBe('/');
    const star = await app.request('/definitions/5/star', {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(csrf)}&starred=true&back=${encodeURIComponent('/%09/evil.com')}`,
    });
    expect(star.status).toBe(303);
    expect(star.headers.get('location')).not.toContain('evil.com');
  });

  it('answers 400, not 500, for ?logs=1e400 and for ids past 2^53', async () => {
    const { cookie } = await signIn();
    const { instance } = await servicesFor(tdb).operations.launch({ definitionId: 5, launchedBy: 'test' });
    expect((await app.request(`/definitions/5/instances/${instance.id}/live?logs=1e400`, { headers: { cookie } })).status).toBe(400);
    expect((await app.request(`/definitions/5/instances/${instance.id}/live?logs=2`, { headers: { cookie } })).status).toBe(200);
    expect((await app.request('/definitions/9007199254740993', { headers: { cookie } })).status).toBe(400);
  });
});

describe('console roles need a verified email, and an ad-hoc sub_process needs rights on its target (sqlite)', () => {
  let tdb: TestDatabase;
  let app: App;
  const ADMIN = 'boss@example.com';
  const OWNER = 'owner@example.com';

  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    const services = servicesFor(tdb);
    app = createHttpApp({ services, logger: recordingLogger(), console: { config: { ...CONFIG, localSignIn: false, admins: [ADMIN] } } });
    await insertDefinition(tdb.db, 7, 'noop:\n', { name: 'owned' });
    await insertDefinition(tdb.db, 8, 'execute: private-work\n', { name: 'not owned' });
    const people = new ConsoleRepository(tdb.db, services.ids, services.clock);
    await tdb.db.transaction().execute((trx) => people.replaceAdmins(trx, 7, [OWNER]));
  });
  afterAll(async () => {
    await tdb?.close();
  });

  async function sessionFor(email: string, verified: boolean): Promise<{ cookie: string; csrf: string }> {
    const session = newSession(email, email, Date.now(), verified);
    await new SessionRepository(tdb.db, servicesFor(tdb).clock).create(session.sid, session.email, new Date(session.expiresAt));
    return { cookie: `${SESSION_COOKIE}=${encodeSession(CONFIG.secret, session)}`, csrf: session.csrf };
  }

  const post = (path: string, who: { cookie: string; csrf: string }, fields: Record<string, string> = {}) =>
    app.request(path, {
      method: 'POST',
      headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: who.csrf, ...fields }).toString(),
    });

  it('treats a listed admin or definition admin with an unverified email as a viewer', async () => {
    expect((await post('/definitions/7/instances', await sessionFor(OWNER, false))).status).toBe(403);
    expect((await post('/definitions/8/suspend', await sessionFor(ADMIN, false), { suspended: 'true' })).status).toBe(403);
    expect((await post('/definitions/7/instances', await sessionFor(OWNER, true))).status).toBe(303);
  });

  it('refuses a definition admin an ad-hoc script that starts a definition they do not administer', async () => {
    const owner = await sessionFor(OWNER, true);
    const before = await tdb.db.selectFrom('job_instances').select('id').execute();
    expect((await post('/definitions/7/instances', owner, { script: 'sub_process: 8\n' })).status).toBe(403);
    expect(await tdb.db.selectFrom('job_instances').select('id').execute()).toEqual(before);
    expect((await post('/definitions/7/instances', owner, { env: 'BASH_ENV=$(id)' })).status).toBe(422);
    expect(await tdb.db.selectFrom('job_instances').select('id').execute()).toEqual(before);
  });
});
