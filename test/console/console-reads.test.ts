/**
 * What the console's pages read. On the Data API every statement is an HTTP round trip, so a page reads each table
 * once and only the rows it shows; these tests record every statement the app runs and hold it to that.
 */
import type { KyselyPlugin, PluginTransformQueryArgs } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConsoleConfig } from '../../http/console/console-config';
import { encodeSession, newSession, SESSION_COOKIE } from '../../http/console/console-session';
import { SessionRepository } from '../../db/repositories/session-repository';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { DefinitionRepository } from '../../db/repositories/definition-repository';
import type { EngineServices } from '../../app/engine-services';
import { createHttpApp } from '../../http/http-app';
import type { App } from '../../http/api/http-routes';
import { recordingLogger } from '../api/api-fixtures';
import { finishExecutionsAsAgent, insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const SECRET = 'a-console-secret-for-tests-only-0123456789';
const ADMIN = 'boss@example.com';
const CONFIG: ConsoleConfig = { secret: SECRET, oidc: undefined, admins: [ADMIN], localSignIn: false, baseUrl: undefined };
const LIVE_JOB = 201;

/** One statement the app ran: the table it reads first, and how many rows came back. */
interface Statement {
  table: string;
  rows: number;
}

describe('console reads', () => {
  let tdb: TestDatabase;
  let services: EngineServices;
  let app: App;
  let cookie: string;
  const statements: Statement[] = [];

  /** How many statements read each table (by the table after FROM). */
  const readsPerTable = () => {
    const counts: Record<string, number> = {};
    for (const s of statements) counts[s.table] = (counts[s.table] ?? 0) + 1;
    return counts;
  };
  const get = (path: string) => app.request(path, { headers: { cookie } });

  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    const pending = new WeakMap<PluginTransformQueryArgs['queryId'], Statement>();
    const recorder: KyselyPlugin = {
      transformQuery: ({ node, queryId }) => {
        const sql = tdb.db.getExecutor().compileQuery(node, queryId).sql;
        const statement = { table: /\bfrom "(\w+)"/.exec(sql)?.[1] ?? sql, rows: 0 };
        statements.push(statement);
        pending.set(queryId, statement);
        return node;
      },
      transformResult: async ({ queryId, result }) => {
        const statement = pending.get(queryId);
        if (statement) statement.rows = result.rows.length;
        return result;
      },
    };
    services = servicesFor({ ...tdb, db: tdb.db.withPlugin(recorder) });
    app = createHttpApp({ services, logger: recordingLogger(), console: { config: CONFIG } });
    const session = newSession(ADMIN, 'Boss', Date.now());
    await new SessionRepository(tdb.db, services.clock).create(session.sid, session.email, new Date(session.expiresAt));
    cookie = `${SESSION_COOKIE}=${encodeSession(SECRET, session)}`;
  });
  beforeEach(() => {
    statements.length = 0;
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('reads each table once per poll of the live instance view', async () => {
    await insertDefinition(tdb.db, LIVE_JOB, 'execute: first\nexecute: second\n', { name: 'live-job' });
    const { instance } = await services.operations.launch({ definitionId: LIVE_JOB, launchedBy: 'test', env: { GREETING: 'hello' } });
    // One node per pass: the first command is queued, done and archived, then the second is queued.
    for (let pass = 0; pass < 3; pass++) await services.processorPass();
    await finishExecutionsAsAgent(tdb.db);
    for (let pass = 0; pass < 3; pass++) await services.processorPass();
    await tdb.db.updateTable('executions').set({ output_head: 'so far\n' }).where('job_instance_id', '=', instance.id).execute();

    statements.length = 0;
    const res = await get(`/definitions/${LIVE_JOB}/instances/${instance.id}/live`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; fragments: Record<string, string> };
    expect(body.status).toBe('working');
    expect(body.fragments['instance-summary']).toContain('GREETING=hello');
    expect(body.fragments['instance-executions']).toContain('<code>first</code>');
    expect(body.fragments['instance-executions']).toContain('so far');
    // Each list is read ids and widths first, then the rows in chunks that fit a Data API response (db/repositories/paging.ts).
    expect(readsPerTable()).toEqual({ console_sessions: 1, job_instances: 1, tokens: 2, executions: 2, execution_histories: 2, instance_logs: 2 });

    expect((await get(`/definitions/${LIVE_JOB + 1}/instances/${instance.id}/live`)).status).toBe(404);
  });

  it('names the timeline rows from the bars themselves', async () => {
    for (const view of ['jobs', 'workers']) {
      statements.length = 0;
      const res = await get(`/timeline?view=${view}&period=1h`);
      expect(res.status, view).toBe(200);
      // The live job's archived first command is on the workers' timeline, its instance on the jobs' one (its row named).
      expect(await res.text(), view).toContain(view === 'jobs' ? '<title>live-job</title>' : 'live-job: first');
      expect(readsPerTable().job_definitions, view).toBeUndefined();
    }
  });

  it('names the unfinished executions from their own statement', async () => {
    // The live job's second command is still queued.
    const res = await get('/executions');
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('<code>second</code>');
    expect(page).toMatch(/>live-job #\d+</);
    // Ids and widths, then the rows with the definition's name joined.
    expect(readsPerTable()).toEqual({ console_sessions: 1, executions: 2 });
  });

  it('reads only the starred definitions for the dashboard', async () => {
    const definitions = new DefinitionRepository(tdb.db, services.ids, services.clock, { rowLocks: false, validationContext: async () => ({}) });
    const create = (name: string) => definitions.create({ name, script: 'noop:\n', tags: [`${name}-tag`], crons: ['0 * * * *'], suspendCrons: ['30 1 * * *'] }, 'test');
    const starred = await create('starred-job');
    await create('unstarred-job');
    await create('another-unstarred-job');
    await new ConsoleRepository(tdb.db, services.ids, services.clock).setStar(ADMIN, starred.id, true);

    statements.length = 0;
    const res = await get('/');
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('starred-job');
    expect(page).toContain('starred-job-tag');
    expect(page).not.toContain('unstarred-job');
    const rowsOf = (table: string) => statements.filter((s) => s.table === table).reduce((sum, s) => sum + s.rows, 0);
    // job_definitions twice: the starred ids and widths (stars joined, not read first), then the rows that fit a response.
    expect([rowsOf('job_definitions'), rowsOf('job_definition_tags'), rowsOf('job_schedules'), rowsOf('job_suspend_schedules')]).toEqual([2, 1, 1, 1]);
    // job_instances: the newest per starred definition (none ran: one statement), the working list (the live job's
    // instance: its width, then its row) and the failed and canceled lists (empty: their widths only).
    expect(readsPerTable()).toEqual({ console_sessions: 1, job_definitions: 2, job_definition_tags: 1, job_schedules: 1, job_suspend_schedules: 1, definition_admins: 1, job_instances: 5 });
  });

  it('shows a definition description as Markdown', async () => {
    const definitions = new DefinitionRepository(tdb.db, services.ids, services.clock, { rowLocks: false, validationContext: async () => ({}) });
    const documented = await definitions.create({ name: 'documented-job', description: 'Runs **nightly**.\n\n<script>alert(1)</script>', script: 'noop:\n' }, 'test');
    const page = await (await get(`/definitions/${documented.id}`)).text();
    expect(page).toContain('<div class="markdown"><p>Runs <strong>nightly</strong>.</p>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('reads the lists of a page of definitions only, not of every definition', async () => {
    const definitions = new DefinitionRepository(services.handle.db, services.ids, services.clock, { rowLocks: false, validationContext: async () => ({}) });
    const create = (name: string) => definitions.create({ name, script: 'noop:\n', tags: [`${name}-tag`], crons: ['0 * * * *'], suspendCrons: ['30 1 * * *'] }, 'test');
    const first = await create('paged-job');
    await create('next-page-job');

    statements.length = 0;
    const page = await definitions.list([], { afterId: first.id - 1, limit: 1 });
    expect(page.map((d) => [d.name, d.tags])).toEqual([['paged-job', ['paged-job-tag']]]);
    const rowsOf = (table: string) => statements.filter((s) => s.table === table).reduce((sum, s) => sum + s.rows, 0);
    expect([rowsOf('job_definition_tags'), rowsOf('job_schedules'), rowsOf('job_suspend_schedules')]).toEqual([1, 1, 1]);
  });
});
