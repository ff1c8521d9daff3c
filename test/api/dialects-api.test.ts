/** The core API flows on MariaDB (mysql2) and on the Data API endpoint, where driver value shapes differ. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishExecutionsAsAgent, runUntilIdle } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { createHarness, snapshot, type ApiHarness } from './api-fixtures';

for (const dialect of ['mysql', 'data-api'] as const) {
  describe(`${dialect}: core API flows`, () => {
    let tdb: TestDatabase;
    let h: ApiHarness;
    beforeAll(async () => {
      tdb = await createTestDatabase(dialect);
      h = await createHarness(tdb);
    });
    afterAll(async () => {
      await tdb.close();
    });

    it('creates, filters, updates all-or-nothing, launches with env and idempotency, reports, retries and deletes', async () => {
      const hot = await h.call('POST', '/v1/definitions', { body: { name: 'hot', script: 'noop:\n', cron: ['hotdogs'], tags: ['t'] } });
      expect(hot.status).toBe(422);
      expect(await hot.text()).toContain('hotdogs');
      expect(await tdb.db.selectFrom('job_definitions').selectAll().execute()).toEqual([]);
      expect(await tdb.db.selectFrom('tags').selectAll().execute()).toEqual([]);

      const created = await h.call('POST', '/v1/definitions', {
        body: { name: 'Ünïcode 🚀 job', script: 'execute: flaky\n', tags: ['batch', 'nightly'], cron: ['0 3 * * *'], suspend_cron: ['0 3 * * 0'], api_allowed: true, prevent_multi: 0, time_zone: 'Asia/Tokyo' },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const definition = (await created.json()) as { id: number; name: string; suspended: boolean; tags: string[]; created_at: string };
      expect(definition).toMatchObject({ name: 'Ünïcode 🚀 job', suspended: false, tags: ['batch', 'nightly'] });
      const listed = (await (await h.call('GET', '/v1/definitions?tags[]=batch&tags[]=nightly', { as: 'read' })).json()) as { id: number }[];
      expect(listed.map((d) => d.id)).toEqual([definition.id]);

      const before = await snapshot(tdb);
      const badPut = await h.call('PUT', `/v1/definitions/${definition.id}`, { body: { name: 'renamed', tags: ['x'], cron: ['1 2 3 4 5', 'nope'] } });
      expect(badPut.status).toBe(422);
      expect(await snapshot(tdb)).toEqual(before);
      expect((await h.call('PUT', `/v1/definitions/${definition.id}`, { body: { suspended: true, tags: ['batch'] } })).status).toBe(204);
      const got = (await (await h.call('GET', `/v1/definitions/${definition.id}`)).json()) as { suspended: boolean; tags: string[] };
      expect(got).toMatchObject({ suspended: true, tags: ['batch'] });

      const launch = () => h.call('POST', `/v1/definitions/${definition.id}/instances`, { as: 'launch', body: { env: { WHO: 'ci' } }, headers: { 'Idempotency-Key': 'k-1' } });
      const first = (await (await launch()).json()) as { id: number; status: string };
      const again = (await (await launch()).json()) as { id: number };
      expect(again.id).toBe(first.id);
      for (let i = 0; i < 3; i++) await h.services.processorPass();
      const env = await tdb.db.selectFrom('executions').select('env').executeTakeFirstOrThrow();
      expect(JSON.parse(env.env)).toMatchObject({ WHO: 'ci' });
      await finishExecutionsAsAgent(tdb.db, () => 1);
      await runUntilIdle(h.services, () => 1);

      const stats = (await (await h.call('GET', '/v1/stats/instance', { as: 'read' })).json()) as Record<string, number>;
      expect(stats).toEqual({ 'kuroko2.job_instances.working': 0, 'kuroko2.job_instances.error': 1 });
      const detail = (await (await h.call('GET', `/v1/definitions/${definition.id}/instances/${first.id}`, { as: 'read' })).json()) as {
        status: string;
        created_at: string;
        tokens: { id: number; status: string }[];
        executions: { exit_status: number; started_at: string }[];
      };
      expect(detail.status).toBe('error');
      expect(Number.isNaN(Date.parse(detail.created_at))).toBe(false);
      expect(detail.executions[0]?.exit_status).toBe(1);
      const token = detail.tokens.find((t) => t.status === 'failure');
      expect(token).toBeDefined();

      expect((await h.call('DELETE', `/v1/definitions/${definition.id}`)).status).toBe(409);
      const retried = await h.call('POST', `/v1/definitions/${definition.id}/instances/${first.id}/tokens/${token?.id}/retry`, { as: 'launch' });
      expect(retried.status).toBe(200);
      await runUntilIdle(h.services, () => 0);
      const logs = (await (await h.call('GET', `/v1/definitions/${definition.id}/instances/${first.id}/logs`, { as: 'read' })).json()) as { message: string }[];
      expect(logs[0]?.message).toBe('Launched by instances API (batch-launcher)');
      expect(logs.some((l) => l.message.includes('`flaky` returns 0'))).toBe(true);
      expect((await h.call('DELETE', `/v1/definitions/${definition.id}`)).status).toBe(204);
      expect((await h.call('GET', `/v1/definitions/${definition.id}`)).status).toBe(404);
      expect((await h.app.request('/v1/health')).status).toBe(200);
    });
  });
}
