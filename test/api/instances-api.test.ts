import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { finishExecutionsAsAgent, insertDefinition, runUntilIdle } from '../helpers/engine-fixtures';
import { createHarness, snapshot, type ApiHarness } from './api-fixtures';

interface InstanceBody {
  id: number;
  status: string;
  job_definition_id: number;
  launched_by: string;
  tokens?: { id: number; parent_id: number | null; path: string; status: string; message: string }[];
  executions?: { id: number; token_id: number; shell: string; exit_status: number | null; pid: number | null; hostname: string | null }[];
}

describe('job instances API (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
  });
  afterEach(async () => {
    await tdb.close();
  });

  const launch = async (definitionId: number, body?: unknown, headers?: Record<string, string>) => {
    const res = await h.call('POST', `/v1/definitions/${definitionId}/instances`, { as: 'launch', ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) });
    return { res, body: (await res.clone().json()) as InstanceBody };
  };

  it('launches with 201 and Kuroko2\'s body; env values reach the command as environment variables', async () => {
    await insertDefinition(tdb.db, 10, 'execute: printenv GREETING\n', { apiAllowed: true });
    const { res, body } = await launch(10, { env: { GREETING: "it's me", EMPTY: '' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBeNull();
    expect(body).toMatchObject({ status: 'working', job_definition_id: 10, launched_by: 'instances API (batch-launcher)' });
    expect(h.launches.count).toBe(1);
    for (let pass = 0; pass < 5 && (await tdb.db.selectFrom('executions').select('id').execute()).length === 0; pass++) await h.services.processorPass();
    const execution = await tdb.db.selectFrom('executions').select('env').executeTakeFirstOrThrow();
    expect(JSON.parse(execution.env)).toMatchObject({ GREETING: "it's me", EMPTY: '', KUROKO2_JOB_INSTANCE_ID: String(body.id) });
    const logs = (await (await h.call('GET', `/v1/definitions/10/instances/${body.id}/logs`, { as: 'read' })).json()) as { message: string }[];
    expect(logs[0]?.message).toBe('Launched by instances API (batch-launcher)');
  });

  it('launches a Kuroko2 client\'s empty JSON body like no body at all', async () => {
    await insertDefinition(tdb.db, 11, 'noop:\n', { apiAllowed: true });
    const res = await h.call('POST', '/v1/definitions/11/instances', { as: 'launch', rawBody: '', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(201);
  });

  it('403s a definition without api_allowed and creates nothing', async () => {
    await insertDefinition(tdb.db, 12, 'noop:\n', { apiAllowed: false, name: 'Private job' });
    const before = await snapshot(tdb);
    const { res, body } = await launch(12, { env: { A: 'b' } });
    expect(res.status).toBe(403);
    expect(body).toEqual({ status_code: 403, error_code: 'forbidden', message: 'Private job is not allowed to be executed via API' });
    expect(await snapshot(tdb)).toEqual(before);
    expect(h.launches.count).toBe(0);
  });

  it('400s non-string env values and 422s bad env names, creating nothing', async () => {
    await insertDefinition(tdb.db, 13, 'noop:\n', { apiAllowed: true });
    const before = await snapshot(tdb);
    for (const env of [{ A: 1 }, { A: null }, { A: ['x'] }, { A: { b: 'c' } }, 'A=b', ['A']]) {
      const { res, body } = await launch(13, { env });
      expect(res.status, JSON.stringify(env)).toBe(400);
      expect(body).toMatchObject({ status_code: 400, error_code: 'bad_request' });
    }
    for (const env of [{ '1A': 'x' }, { 'A-B': 'x' }, { ['K'.repeat(129)]: 'x' }, { A: 'v'.repeat(32 * 1024 + 1) }, Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`K${i}`, 'v']))]) {
      const { res } = await launch(13, { env });
      expect(res.status).toBe(422);
    }
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('returns the first instance for a repeated Idempotency-Key', async () => {
    await insertDefinition(tdb.db, 14, 'noop:\n', { apiAllowed: true });
    const first = await launch(14, {}, { 'Idempotency-Key': 'order-42' });
    const second = await launch(14, {}, { 'Idempotency-Key': 'order-42' });
    expect(first.res.status).toBe(201);
    expect(second.res.status).toBe(201);
    expect(second.body.id).toBe(first.body.id);
    expect(second.res.headers.get('idempotent-replayed')).toBe('true');
    const other = await launch(14, {}, { 'Idempotency-Key': 'order-43' });
    expect(other.body.id).not.toBe(first.body.id);
    expect(await tdb.db.selectFrom('job_instances').select('id').where('job_definition_id', '=', 14).execute()).toHaveLength(2);
  });

  it('refuses a repeated Idempotency-Key with a different body (422, nothing launched)', async () => {
    await insertDefinition(tdb.db, 16, 'noop:\n', { apiAllowed: true });
    const first = await launch(16, { env: { TARGET: 'db1', MODE: 'full' } }, { 'Idempotency-Key': 'nightly-7' });
    // The same env written in another key order is the same request.
    const same = await launch(16, { env: { MODE: 'full', TARGET: 'db1' } }, { 'Idempotency-Key': 'nightly-7' });
    expect(same.body.id).toBe(first.body.id);
    const before = await snapshot(tdb);
    const changed = await launch(16, { env: { TARGET: 'db2', MODE: 'full' } }, { 'Idempotency-Key': 'nightly-7' });
    expect(changed.res.status).toBe(422);
    expect(changed.body).toEqual({
      status_code: 422,
      error_code: 'unprocessable_entity',
      message: `Idempotency-Key nightly-7 was used for instance ${first.body.id} with a different env or script; use a new key for a new launch`,
    });
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('launches an ad-hoc script after validating it (422 with line and column, nothing created)', async () => {
    await insertDefinition(tdb.db, 15, 'execute: echo definition\n', { apiAllowed: true });
    const before = await snapshot(tdb);
    // An ad-hoc script needs the admin scope (test/security/ad-hoc-script.test.ts).
    const launch = async (definitionId: number, body: unknown) => {
      const res = await h.call('POST', `/v1/definitions/${definitionId}/instances`, { as: 'admin', body });
      return { res, body: (await res.clone().json()) as InstanceBody };
    };
    const bad = await launch(15, { script: 'noop:\nexecute:\nnot_a_task: 1\n' });
    expect(bad.res.status).toBe(422);
    const body = bad.body as unknown as { errors: { line: number; column: number }[] };
    expect(body.errors.map((e) => e.line)).toEqual([2, 3]);
    expect(await snapshot(tdb)).toEqual(before);
    const good = await launch(15, { script: 'execute: echo adhoc\n' });
    expect(good.res.status).toBe(201);
    await runUntilIdle(h.services);
    const histories = await tdb.db.selectFrom('execution_histories').select('shell').execute();
    expect(histories.map((r) => r.shell)).toEqual(['echo adhoc']);
  });

  it('shows an instance with tokens and executions, its logs oldest first with the command output, and lists instances', async () => {
    await insertDefinition(tdb.db, 16, 'execute: echo out\nexecute: false\n', { apiAllowed: true });
    const { body: launched } = await launch(16);
    await h.services.processorPass();
    await h.services.processorPass();
    let detail = (await (await h.call('GET', `/v1/definitions/16/instances/${launched.id}`, { as: 'read' })).json()) as InstanceBody;
    expect(detail.status).toBe('working');
    expect(detail.tokens?.[0]).toMatchObject({ path: expect.stringContaining('execute'), status: 'working' });
    expect(detail.executions).toEqual([expect.objectContaining({ shell: 'echo out', exit_status: null, pid: null })]);
    await finishExecutionsAsAgent(tdb.db, () => 0, 'the output\n');
    await runUntilIdle(h.services, (shell) => (shell === 'false' ? 1 : 0));
    detail = (await (await h.call('GET', `/v1/definitions/16/instances/${launched.id}`, { as: 'read' })).json()) as InstanceBody;
    expect(detail.status).toBe('error');
    expect(detail.tokens?.map((t) => t.status)).toContain('failure');
    expect(detail.executions?.map((e) => [e.shell, e.exit_status])).toEqual([
      ['echo out', 0],
      ['false', 1],
    ]);
    const logs = (await (await h.call('GET', `/v1/definitions/16/instances/${launched.id}/logs`, { as: 'read' })).json()) as {
      id: number;
      level: string;
      message: string;
      created_at: string;
    }[];
    expect(logs[0]?.message).toContain('Launched by');
    const times = logs.map((l) => Date.parse(l.created_at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(logs.some((l) => l.message.includes('[SUCCESS] `echo out` returns 0.') && l.message.includes('the output'))).toBe(true);
    expect(logs.some((l) => l.level === 'ERROR' || l.level === 'WARN')).toBe(true);

    const second = await launch(16);
    const third = await launch(16);
    const list = async (query = '') => ((await (await h.call('GET', `/v1/definitions/16/instances${query}`, { as: 'read' })).json()) as InstanceBody[]).map((i) => i.id);
    expect(await list()).toEqual([third.body.id, second.body.id, launched.id]);
    expect(await list('?status=error')).toEqual([launched.id]);
    expect(await list('?limit=1')).toEqual([third.body.id]);
    expect(await list(`?before_id=${third.body.id}&limit=1`)).toEqual([second.body.id]);
    expect((await h.call('GET', '/v1/definitions/16/instances?limit=1001', { as: 'read' })).status).toBe(400);
    expect((await h.call('GET', '/v1/definitions/16/instances?status=lost', { as: 'read' })).status).toBe(400);
  });

  it('404s an instance under another definition or unknown', async () => {
    await insertDefinition(tdb.db, 17, 'noop:\n', { apiAllowed: true });
    await insertDefinition(tdb.db, 18, 'noop:\n', { apiAllowed: true });
    const { body } = await launch(17);
    for (const path of [`/v1/definitions/18/instances/${body.id}`, '/v1/definitions/17/instances/99999999', `/v1/definitions/18/instances/${body.id}/logs`]) {
      const res = await h.call('GET', path, { as: 'read' });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ error_code: 'record_not_found' });
    }
    expect((await h.call('DELETE', `/v1/definitions/18/instances/${body.id}`, { as: 'launch' })).status).toBe(404);
    expect((await h.call('POST', '/v1/definitions/999999/instances', { as: 'launch' })).status).toBe(404);
  });

  it('cancels with 200, killing the running command; a second cancel is 409', async () => {
    await insertDefinition(tdb.db, 19, 'execute: sleep 100\n', { apiAllowed: true });
    const { body } = await launch(19);
    await h.services.processorPass();
    await h.services.processorPass();
    const execution = await tdb.db.selectFrom('executions').select(['id']).executeTakeFirstOrThrow();
    await tdb.db.updateTable('executions').set({ attempt: 1, claimed_at: new Date(), started_at: new Date(), pid: 4242 }).where('id', '=', execution.id).execute();
    const res = await h.call('DELETE', `/v1/definitions/19/instances/${body.id}`, { as: 'launch' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: body.id, status: 'canceled' });
    const signals = await tdb.db.selectFrom('process_signals').selectAll().execute();
    expect(signals).toEqual([expect.objectContaining({ execution_id: execution.id, signal: 'SIGTERM' })]);
    const again = await h.call('DELETE', `/v1/definitions/19/instances/${body.id}`, { as: 'launch' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ status_code: 409, error_code: 'conflict' });
  });

  it('retries and skips a failed token with 200; the wrong state is 409', async () => {
    await insertDefinition(tdb.db, 20, 'execute: flaky\nexecute: after\n', { apiAllowed: true });
    const { body } = await launch(20);
    await runUntilIdle(h.services, (shell) => (shell === 'flaky' ? 3 : 0));
    const token = await tdb.db.selectFrom('tokens').select(['id', 'status']).where('job_instance_id', '=', body.id).where('status', '=', 'failure').executeTakeFirstOrThrow();
    const base = `/v1/definitions/20/instances/${body.id}/tokens/${token.id}`;
    const before = h.launches.count;
    let res = await h.call('POST', `${base}/retry`, { as: 'launch' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: body.id, status: 'working' });
    expect(h.launches.count).toBe(before + 1);
    res = await h.call('POST', `${base}/retry`, { as: 'launch' });
    expect(res.status).toBe(409);
    res = await h.call('POST', `${base}/skip`, { as: 'launch' });
    expect(res.status).toBe(409);
    await runUntilIdle(h.services, (shell) => (shell === 'flaky' ? 3 : 0));
    res = await h.call('POST', `${base}/skip`, { as: 'launch' });
    expect(res.status).toBe(200);
    await runUntilIdle(h.services);
    const final = (await (await h.call('GET', `/v1/definitions/20/instances/${body.id}`)).json()) as InstanceBody;
    expect(final.status).toBe('success');
    expect(final.executions?.map((e) => e.shell)).toEqual(['flaky', 'flaky', 'after']);
    expect((await h.call('POST', `/v1/definitions/20/instances/${body.id}/tokens/123456789/retry`, { as: 'launch' })).status).toBe(404);
  });

  it('answers "canceled" when prevent_multi blocks the launch', async () => {
    await insertDefinition(tdb.db, 21, 'execute: long\n', { apiAllowed: true, preventMulti: 1 });
    const first = await launch(21);
    const second = await launch(21);
    expect(first.body.status).toBe('working');
    expect(second.res.status).toBe(201);
    expect(second.body.status).toBe('canceled');
  });
});
