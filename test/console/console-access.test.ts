/**
 * Roles and CSRF on every console write, as HTTP requests against the app over a real database: a viewer gets 403
 * and nothing changes; a definition admin acts on their definitions only; a request without the session's CSRF
 * token or without a session changes nothing either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { encodeSession, newSession, SESSION_COOKIE } from '../../http/console/console-session';
import { SessionRepository } from '../../db/repositories/session-repository';
import type { ConsoleConfig } from '../../http/console/console-config';
import { createHttpApp } from '../../http/http-app';
import type { App } from '../../http/api/http-routes';
import type { EngineServices } from '../../app/engine-services';
import { recordingLogger, snapshot } from '../api/api-fixtures';
import { finishExecutionsAsAgent, insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const SECRET = 'a-console-secret-for-tests-only-0123456789';
const PEOPLE = {
  admin: { email: 'boss@example.com', name: 'Boss' },
  owner: { email: 'owner@example.com', name: 'Owner' },
  viewer: { email: 'viewer@example.com', name: 'Viewer' },
} as const;
type Person = keyof typeof PEOPLE;

const CONFIG: ConsoleConfig = { secret: SECRET, oidc: undefined, admins: [PEOPLE.admin.email], localSignIn: false, baseUrl: undefined };
const OWNED = 101;
const OTHER = 102;
const RUNNING = 103;
const WORKER = 900;

describe('console access control', () => {
  let tdb: TestDatabase;
  let services: EngineServices;
  let app: App;
  let failedInstance: number;
  let failedToken: number;
  let otherInstance: number;
  let otherToken: number;
  let runningInstance: number;
  let runningExecution: number;
  const sessions = {} as Record<Person, { cookie: string; csrf: string }>;

  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    services = servicesFor(tdb);
    app = createHttpApp({ services, logger: recordingLogger(), console: { config: CONFIG } });
    for (const [who, person] of Object.entries(PEOPLE) as [Person, { email: string; name: string }][]) {
      const session = newSession(person.email, person.name, Date.now());
      await new SessionRepository(tdb.db, services.clock).create(session.sid, session.email, new Date(session.expiresAt));
      sessions[who] = { cookie: `${SESSION_COOKIE}=${encodeSession(SECRET, session)}`, csrf: session.csrf };
    }
    await insertDefinition(tdb.db, OWNED, 'execute: false\n', { name: 'owned' });
    await insertDefinition(tdb.db, OTHER, 'execute: false\n', { name: 'other' });
    await insertDefinition(tdb.db, RUNNING, 'execute: sleep 100\n', { name: 'running' });
    const people = new ConsoleRepository(tdb.db, services.ids, services.clock);
    await tdb.db.transaction().execute((trx) => people.replaceAdmins(trx, OWNED, [PEOPLE.owner.email]));

    const launch = async (definitionId: number) => (await services.operations.launch({ definitionId, launchedBy: 'test' })).instance.id;
    failedInstance = await launch(OWNED);
    otherInstance = await launch(OTHER);
    runningInstance = await launch(RUNNING);
    await services.processorPass();
    await services.processorPass();
    // The two `false` commands fail; the sleep is left running with a pid.
    const sleeper = await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', runningInstance).executeTakeFirstOrThrow();
    runningExecution = Number(sleeper.id);
    await tdb.db.updateTable('executions').set({ attempt: 1, claimed_at: new Date(), started_at: new Date(), pid: 99_999, hostname: 'host-a' }).where('id', '=', runningExecution).execute();
    await finishExecutionsAsAgent(tdb.db, (shell) => (shell === 'false' ? 1 : 0));
    await tdb.db.updateTable('executions').set({ finished_at: null, exit_status: null }).where('id', '=', runningExecution).execute();
    await services.processorPass();
    await services.processorPass();
    const tokenOf = async (instanceId: number) =>
      Number((await tdb.db.selectFrom('tokens').select(['id', 'status']).where('job_instance_id', '=', instanceId).where('status', '=', 'failure').executeTakeFirstOrThrow()).id);
    failedToken = await tokenOf(failedInstance);
    otherToken = await tokenOf(otherInstance);
    await tdb.db
      .insertInto('workers')
      .values({ id: WORKER, hostname: 'host-a', queues: '["@default"]', slots: 2, pids: '{}', heartbeat_at: new Date(), started_at: new Date(), suspended: false, draining: false, version: 0 })
      .execute();
  });

  afterAll(async () => {
    await tdb?.close();
  });

  const definitionForm = (overrides: Record<string, string> = {}) => ({ name: 'changed', script: 'execute: echo changed\n', time_zone: 'UTC', prevent_multi: '1', admins: PEOPLE.viewer.email, ...overrides });

  /** Every console write and the body a form would send; `:def` is the definition the person acts on. */
  const writes = (def: number, instance: number, token: number): { route: string; path: string; body: Record<string, string> }[] => [
    { route: '/definitions', path: '/definitions', body: definitionForm({ name: 'created' }) },
    { route: '/definitions/:id', path: `/definitions/${def}`, body: definitionForm() },
    { route: '/definitions/:id/delete', path: `/definitions/${def}/delete`, body: {} },
    { route: '/definitions/:id/suspend', path: `/definitions/${def}/suspend`, body: { suspended: 'true' } },
    { route: '/definitions/:id/instances', path: `/definitions/${def}/instances`, body: { script: '', env: 'A=1' } },
    { route: '/definitions/:id/instances/:iid/cancel', path: `/definitions/${def}/instances/${instance}/cancel`, body: {} },
    { route: '/definitions/:id/instances/:iid/tokens/:tid/retry', path: `/definitions/${def}/instances/${instance}/tokens/${token}/retry`, body: {} },
    { route: '/definitions/:id/instances/:iid/tokens/:tid/skip', path: `/definitions/${def}/instances/${instance}/tokens/${token}/skip`, body: {} },
    {
      route: '/definitions/:id/instances/:iid/executions/:eid/terminate',
      path: `/definitions/${RUNNING}/instances/${runningInstance}/executions/${runningExecution}/terminate`,
      body: {},
    },
    { route: '/workers/:id/suspend', path: `/workers/${WORKER}/suspend`, body: { suspended: 'true' } },
  ];
  /** Writes any signed-in person may make: their own star and session, and the side-effect-free script check. */
  const OPEN_TO_EVERYONE = ['/definitions/:id/star', '/sign_out', '/console/validate'];

  const post = (path: string, as: Person | null, body: Record<string, string>, options: { csrf?: string | null } = {}) => {
    const session = as ? sessions[as] : undefined;
    const csrf = options.csrf === undefined ? session?.csrf : options.csrf;
    const form = new URLSearchParams({ ...body, ...(csrf ? { _csrf: csrf } : {}) });
    return app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(session ? { cookie: session.cookie } : {}) },
      body: form.toString(),
    });
  };
  const consoleState = async () => ({
    ...(await snapshot(tdb)),
    definition_admins: (await tdb.db.withTables<{ definition_admins: { email: string } }>().selectFrom('definition_admins').selectAll().execute()).map((r) => JSON.stringify(r)).sort(),
  });

  it('covers every console write route', () => {
    const routes = new Set(
      app.routes.filter((r) => r.method === 'POST' && !r.path.startsWith('/v1')).map((r) => r.path.split('{[1-9][0-9]{0,15}}').join('')),
    );
    const covered = new Set([...writes(1, 1, 1).map((w) => w.route), ...OPEN_TO_EVERYONE]);
    expect([...routes].sort()).toEqual([...covered].sort());
  });

  it('refuses every write of a viewer with 403 and changes nothing', async () => {
    for (const write of writes(OWNED, failedInstance, failedToken)) {
      const before = await consoleState();
      const res = await post(write.path, 'viewer', write.body);
      expect(res.status, write.route).toBe(403);
      expect(await res.text(), write.route).toContain('viewer@example.com may not');
      expect(await consoleState(), write.route).toEqual(before);
    }
  });

  it('refuses a definition admin on other definitions and on global actions, and changes nothing', async () => {
    for (const write of writes(OTHER, otherInstance, otherToken)) {
      const before = await consoleState();
      const res = await post(write.path, 'owner', write.body);
      expect(res.status, write.route).toBe(403);
      expect(await res.text(), write.route).toContain('owner@example.com may not');
      expect(await consoleState(), write.route).toEqual(before);
    }
  });

  it('refuses a write without the session CSRF token, or without a session, and changes nothing', async () => {
    for (const write of writes(OWNED, failedInstance, failedToken)) {
      const before = await consoleState();
      expect((await post(write.path, 'admin', write.body, { csrf: null })).status, write.route).toBe(403);
      expect((await post(write.path, 'admin', write.body, { csrf: sessions.viewer.csrf })).status, write.route).toBe(403);
      const anonymous = await post(write.path, null, write.body);
      expect(anonymous.status, write.route).toBe(303);
      expect(anonymous.headers.get('location')).toMatch(/^\/sign_in/);
      expect(await consoleState(), write.route).toEqual(before);
    }
  });

  it('treats a forged or tampered session as signed out', async () => {
    const [name, value] = sessions.viewer.cookie.split('=') as [string, string];
    const [payload] = value.split('.');
    const adminPayload = Buffer.from(JSON.stringify({ email: PEOPLE.admin.email, name: 'x', csrf: sessions.viewer.csrf, exp: Date.now() + 60_000 })).toString('base64url');
    for (const cookie of [`${name}=${adminPayload}.${value.split('.')[1]}`, `${name}=${payload}.AAAA`, `${name}=garbage`]) {
      const res = await app.request('/workers', { headers: { cookie } });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/sign_in?return_to=%2Fworkers');
    }
  });

  it('shows a viewer the pages without any action button', async () => {
    const res = await app.request(`/definitions/${OWNED}/instances/${failedInstance}`, { headers: { cookie: sessions.viewer.cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('owned');
    expect(page).not.toContain('/retry');
    expect(page).not.toContain('/cancel');
    const definition = await (await app.request(`/definitions/${OWNED}`, { headers: { cookie: sessions.viewer.cookie } })).text();
    expect(definition).not.toContain(`/definitions/${OWNED}/edit`);
    expect(definition).toContain('You can view this definition');
    expect((await app.request('/definitions/new', { headers: { cookie: sessions.viewer.cookie } })).status).toBe(403);
  });

  it('lets a viewer star a definition for themselves only', async () => {
    const res = await post(`/definitions/${OWNED}/star`, 'viewer', { starred: 'true', back: '/' });
    expect(res.status).toBe(303);
    const people = new ConsoleRepository(tdb.db, services.ids, services.clock);
    expect([...(await people.starredIds(PEOPLE.viewer.email))]).toEqual([OWNED]);
    expect((await people.starredIds(PEOPLE.admin.email)).size).toBe(0);
  });

  it('lets a definition admin retry on their definition and a global admin suspend a worker', async () => {
    const retried = await post(`/definitions/${OWNED}/instances/${failedInstance}/tokens/${failedToken}/retry`, 'owner', {});
    expect(retried.status).toBe(303);
    const token = await tdb.db.selectFrom('tokens').select('status').where('id', '=', failedToken).executeTakeFirstOrThrow();
    expect(token.status).toBe('working');

    const suspended = await post(`/workers/${WORKER}/suspend`, 'admin', { suspended: 'true' });
    expect(suspended.status).toBe(303);
    const worker = await tdb.db.selectFrom('workers').select('suspended').where('id', '=', WORKER).executeTakeFirstOrThrow();
    expect(Number(worker.suspended)).toBe(1);
  });

  it('terminates a running command for an admin: a TERM request for its attempt, once', async () => {
    const path = `/definitions/${RUNNING}/instances/${runningInstance}/executions/${runningExecution}/terminate`;
    expect((await post(path, 'admin', {})).status).toBe(303);
    const signals = await tdb.db.selectFrom('process_signals').selectAll().where('execution_id', '=', runningExecution).execute();
    const { attempt } = await tdb.db.selectFrom('executions').select('attempt').where('id', '=', runningExecution).executeTakeFirstOrThrow();
    expect(signals.map((s) => [s.signal, Number(s.attempt), s.reason])).toEqual([['SIGTERM', Number(attempt), 'Terminated by Boss <boss@example.com>.']]);
    const again = await post(path, 'admin', {});
    expect(again.status).toBe(303);
    expect(await tdb.db.selectFrom('process_signals').selectAll().where('execution_id', '=', runningExecution).execute()).toHaveLength(1);
  });

  it('answers the script check with located problems', async () => {
    const res = await app.request('/console/validate', {
      method: 'POST',
      headers: { cookie: sessions.viewer.cookie, 'content-type': 'application/json', 'x-csrf-token': sessions.viewer.csrf },
      body: JSON.stringify({ script: 'execute: ok\nbogus_task: 1\n' }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { problems: { line: number; column: number; message: string }[] };
    expect(body.problems).toHaveLength(1);
    expect(body.problems[0]).toMatchObject({ line: 2, column: 1 });
    const noToken = await app.request('/console/validate', {
      method: 'POST',
      headers: { cookie: sessions.viewer.cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ script: 'execute: ok' }),
    });
    expect(noToken.status).toBe(403);
  });
});
