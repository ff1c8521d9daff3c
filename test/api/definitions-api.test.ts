import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createHarness, snapshot, type ApiHarness } from './api-fixtures';

const SCRIPT = 'execute: echo hello\n';

describe('job definitions API (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
  });
  afterAll(async () => {
    await tdb.close();
  });

  const create = async (body: Record<string, unknown>) => {
    const res = await h.call('POST', '/v1/definitions', { body });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as Record<string, unknown> & { id: number };
  };

  it('creates a definition with Kuroko2 defaults and every listed field, and reads it back', async () => {
    const res = await h.call('POST', '/v1/definitions', { body: { name: 'Nightly report', script: SCRIPT } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      name: 'Nightly report',
      description: '',
      script: SCRIPT,
      tags: [],
      cron: [],
      user_id: [],
      notify_cancellation: true,
      suspended: false,
      prevent_multi: 1,
      slack_channel: '',
      api_allowed: false,
      webhook_url: null,
      hipchat_notify_finished: true,
      time_zone: 'UTC',
      suspend_cron: [],
    });
    expect(typeof body.id).toBe('number');
    const got = await h.call('GET', `/v1/definitions/${String(body.id)}`, { as: 'read' });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(body);
    const revisions = await tdb.db.selectFrom('script_revisions').selectAll().where('job_definition_id', '=', body.id as number).execute();
    expect(revisions.map((r) => [r.script, r.changed_by])).toEqual([[SCRIPT, 'API client ops-admin']]);
  });

  it('accepts Kuroko2-style params: string booleans and integers, hipchat_notify_finished, unknown fields, text_tags', async () => {
    const body = await create({
      name: 'legacy',
      description: 'from a Kuroko2 client',
      script: SCRIPT,
      notify_cancellation: 'false',
      hipchat_notify_finished: '0',
      hipchat_room: 'ignored',
      hipchat_additional_text: 'ignored',
      user_id: [1, 2],
      suspended: '1',
      prevent_multi: '2',
      api_allowed: 1,
      slack_channel: '#ops',
      webhook_url: 'https://example.test/hook',
      text_tags: 'batch, nightly、report',
      cron: ['0 3 * * *', '30 4 * * 1-5'],
      suspend_cron: ['30 4 * * 1'],
      time_zone: 'Asia/Tokyo',
    });
    expect(body).toMatchObject({
      notify_cancellation: false,
      hipchat_notify_finished: false,
      suspended: true,
      prevent_multi: 2,
      api_allowed: true,
      slack_channel: '#ops',
      webhook_url: 'https://example.test/hook',
      tags: ['batch', 'nightly', 'report'],
      cron: ['0 3 * * *', '30 4 * * 1-5'],
      suspend_cron: ['30 4 * * 1'],
      time_zone: 'Asia/Tokyo',
      user_id: [],
    });
  });

  it('lists definitions ordered by id, filtered by tags with AND', async () => {
    const a = await create({ name: 'tag-a', script: SCRIPT, tags: ['alpha', 'shared'] });
    const b = await create({ name: 'tag-b', script: SCRIPT, tags: ['beta', 'shared'] });
    const c = await create({ name: 'tag-ab', script: SCRIPT, tags: ['alpha', 'beta', 'shared'] });
    const all = (await (await h.call('GET', '/v1/definitions', { as: 'read' })).json()) as { id: number }[];
    expect(all.map((d) => d.id)).toEqual([...all.map((d) => d.id)].sort((x, y) => x - y));
    expect(all.map((d) => d.id)).toEqual(expect.arrayContaining([a.id, b.id, c.id]));
    const ids = async (query: string) =>
      ((await (await h.call('GET', `/v1/definitions?${query}`, { as: 'read' })).json()) as { id: number }[]).map((d) => d.id);
    expect(await ids('tags[]=shared')).toEqual([a.id, b.id, c.id]);
    expect(await ids('tags[]=alpha&tags[]=beta')).toEqual([c.id]);
    expect(await ids('tags=beta')).toEqual([b.id, c.id]);
    expect(await ids('tags[]=alpha&tags[]=nope')).toEqual([]);
  });

  it('pages through definitions with limit and after_id, all of them when no limit is given', async () => {
    const made = [];
    for (const name of ['page-1', 'page-2', 'page-3']) made.push(await create({ name, script: SCRIPT, tags: ['paged'] }));
    const ids = async (query: string) =>
      ((await (await h.call('GET', `/v1/definitions?tags[]=paged&${query}`, { as: 'read' })).json()) as { id: number }[]).map((d) => d.id);
    expect(await ids('')).toEqual(made.map((d) => d.id));
    expect(await ids('limit=2')).toEqual([made[0]!.id, made[1]!.id]);
    expect(await ids(`limit=2&after_id=${made[1]!.id}`)).toEqual([made[2]!.id]);
    expect(await ids(`limit=2&after_id=${made[2]!.id}`)).toEqual([]);
    for (const bad of ['limit=0', 'limit=x', 'after_id=0', 'after_id=-1']) {
      expect((await h.call('GET', `/v1/definitions?${bad}`, { as: 'read' })).status, bad).toBe(400);
    }
  });

  it('rejects a Kuroko2-style POST with cron ["hotdogs"] with 422 naming it, and creates nothing', async () => {
    const before = await snapshot(tdb);
    const res = await h.call('POST', '/v1/definitions', { body: { name: 'hot', script: SCRIPT, cron: ['hotdogs'], tags: ['brand-new-tag'] } });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { status_code: number; error_code: string; message: string };
    expect(body).toMatchObject({ status_code: 422, error_code: 'unprocessable_entity' });
    expect(body.message).toContain('hotdogs');
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('reports every script error with line and column, together with other problems', async () => {
    const before = await snapshot(tdb);
    const res = await h.call('POST', '/v1/definitions', {
      body: { name: '   ', script: 'execute:\nbogus_task: x\n', cron: ['* * * * * *'], time_zone: 'Mars/Olympus', prevent_multi: 3 },
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { errors: { field: string; line?: number; column?: number; message: string }[] };
    const fields = body.errors.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'script', 'time_zone', 'cron']));
    const scriptErrors = body.errors.filter((e) => e.field === 'script');
    expect(scriptErrors.length).toBe(2);
    expect(scriptErrors.map((e) => e.line)).toEqual([1, 2]);
    for (const e of scriptErrors) expect(e.column).toBeGreaterThanOrEqual(1);
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('answers 422 for a missing name or script, and for values that break a rule; 400 for wrong types', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ script: SCRIPT }, 422, 'name'],
      [{ name: 'x' }, 422, 'script'],
      [{ name: 'x', script: SCRIPT, prevent_multi: 7 }, 422, 'prevent_multi'],
      [{ name: 'x'.repeat(181), script: SCRIPT }, 422, 'name'],
      [{ name: 'x', script: SCRIPT, suspend_cron: ['0 * * * *'] }, 422, 'suspend_cron'],
      [{ name: 'x', script: SCRIPT, cron: ['0 * * * *'], suspend_cron: ['* * * * *'] }, 422, 'suspend_cron'],
      [{ name: 'x', script: SCRIPT, webhook_url: 'ftp://example.test' }, 422, 'webhook_url'],
      [{ name: 'x', script: SCRIPT, tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, 422, 'tags'],
      [{ name: 'x', script: 'queue: nowhere\nexecute: echo\n' }, 422, 'script'],
      [{ name: 'x', script: SCRIPT, suspended: 'maybe' }, 400, 'suspended'],
      [{ name: 42, script: SCRIPT }, 400, 'name'],
      [{ name: 'x', script: SCRIPT, cron: '0 * * * *' }, 400, 'cron'],
      [{ name: 'x', script: SCRIPT, prevent_multi: 'one' }, 400, 'prevent_multi'],
    ];
    const before = await snapshot(tdb);
    for (const [body, status, field] of cases) {
      const res = await h.call('POST', '/v1/definitions', { body });
      const text = await res.text();
      expect(res.status, `${JSON.stringify(body).slice(0, 80)} -> ${text}`).toBe(status);
      expect(text).toContain(field);
      expect(JSON.parse(text)).toMatchObject({ status_code: status, error_code: status === 400 ? 'bad_request' : 'unprocessable_entity' });
    }
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('updates with 204; tags, cron and suspend_cron replace lists only when present; a new script adds a revision', async () => {
    const d = await create({ name: 'editable', script: SCRIPT, tags: ['one'], cron: ['0 1 * * *'], suspend_cron: ['0 1 * * 0'] });
    let res = await h.call('PUT', `/v1/definitions/${d.id}`, { body: { description: 'now described', prevent_multi: 0 } });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    let got = (await (await h.call('GET', `/v1/definitions/${d.id}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ description: 'now described', prevent_multi: 0, tags: ['one'], cron: ['0 1 * * *'], suspend_cron: ['0 1 * * 0'] });
    res = await h.call('PATCH', `/v1/definitions/${d.id}`, { body: { tags: ['two', 'three'], cron: ['0 2 * * *'], suspend_cron: [], script: 'noop:\n' } });
    expect(res.status).toBe(204);
    got = (await (await h.call('GET', `/v1/definitions/${d.id}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ tags: ['three', 'two'], cron: ['0 2 * * *'], suspend_cron: [], script: 'noop:\n' });
    const revisions = await tdb.db.selectFrom('script_revisions').select('script').where('job_definition_id', '=', d.id).execute();
    expect(revisions.map((r) => r.script).sort()).toEqual(['execute: echo hello\n', 'noop:\n']);
    res = await h.call('PUT', `/v1/definitions/${d.id}`, { body: { description: 'again' } });
    expect(res.status).toBe(204);
    expect(await tdb.db.selectFrom('script_revisions').select('id').where('job_definition_id', '=', d.id).execute()).toHaveLength(2);
  });

  it('a PUT with a bad cron (or any other problem) changes nothing', async () => {
    const d = await create({ name: 'stable', script: SCRIPT, tags: ['keep'], cron: ['0 5 * * *'] });
    const before = await snapshot(tdb);
    for (const body of [
      { name: 'renamed', tags: ['other'], cron: ['0 6 * * *', 'hotdogs'] },
      { script: 'execute:\n', tags: ['other'] },
      { time_zone: 'Nowhere/Land', cron: [] },
      { name: '' },
    ]) {
      const res = await h.call('PUT', `/v1/definitions/${d.id}`, { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
    expect(await snapshot(tdb)).toEqual(before);
    const got = (await (await h.call('GET', `/v1/definitions/${d.id}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ name: 'stable', tags: ['keep'], cron: ['0 5 * * *'] });
  });

  it('404s unknown definitions on GET, PUT and DELETE, and 400s ids that are not ids', async () => {
    for (const [method, body] of [['GET', undefined], ['PUT', { name: 'x' }], ['DELETE', undefined]] as const) {
      const res = await h.call(method, '/v1/definitions/987654321', body ? { body } : {});
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ status_code: 404, error_code: 'record_not_found' });
    }
    const res = await h.call('GET', '/v1/definitions/abc');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error_code: 'bad_request' });
  });

  it('deletes with 204, and 409 while an instance of it is in progress', async () => {
    const d = await create({ name: 'to delete', script: 'execute: sleep 1\n', api_allowed: true, tags: ['gone'], cron: ['0 0 * * *'] });
    const launched = await h.call('POST', `/v1/definitions/${d.id}/instances`, { as: 'launch' });
    expect(launched.status).toBe(201);
    const instance = (await launched.json()) as { id: number };
    const before = await snapshot(tdb);
    let res = await h.call('DELETE', `/v1/definitions/${d.id}`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ status_code: 409, error_code: 'conflict' });
    expect(await snapshot(tdb)).toEqual(before);
    expect((await h.call('DELETE', `/v1/definitions/${d.id}/instances/${instance.id}`, { as: 'launch' })).status).toBe(200);
    res = await h.call('DELETE', `/v1/definitions/${d.id}`);
    expect(res.status).toBe(204);
    expect((await h.call('GET', `/v1/definitions/${d.id}`)).status).toBe(404);
    for (const table of ['job_schedules', 'job_definition_tags', 'script_revisions'] as const) {
      expect(await tdb.db.selectFrom(table).selectAll().where('job_definition_id', '=', d.id).execute()).toEqual([]);
    }
  });

  it('stores SQL-looking and non-ASCII text exactly as given', async () => {
    const name = "Robert'); DROP TABLE job_definitions;-- 🚀 ünï";
    const d = await create({ name, description: '%_\\ " OR 1=1 --', script: SCRIPT, tags: ["' OR ''='", '日本語'] });
    const got = (await (await h.call('GET', `/v1/definitions/${d.id}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ name, description: '%_\\ " OR 1=1 --', tags: ["' OR ''='", '日本語'] });
    const filtered = (await (await h.call('GET', `/v1/definitions?tags[]=${encodeURIComponent("' OR ''='")}`)).json()) as { id: number }[];
    expect(filtered.map((x) => x.id)).toEqual([d.id]);
  });

  it('validates wait: targets against existing definitions', async () => {
    await insertDefinition(tdb.db, 777_001, 'noop:\n');
    const ok = await h.call('POST', '/v1/definitions', { body: { name: 'waiter', script: 'wait: 777001/daily\nnoop:\n' } });
    expect(ok.status, await ok.clone().text()).toBe(201);
    const bad = await h.call('POST', '/v1/definitions', { body: { name: 'waiter2', script: 'wait: 777002/daily\nnoop:\n' } });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ message: expect.stringContaining('777002') });
  });
});
