/**
 * The product's own reads and writes stay within the RDS Data API's limits at the largest sizes users may send:
 * 64 KB per row of a result set and 1 MiB per response
 * (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html, "Packet for query is too
 * large": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html), and 65,536
 * characters of `sql` per ExecuteStatement
 * (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html).
 *
 * Every statement goes through the real SDK client and the local Data API server, and a meter on the client
 * (test/helpers/data-api-limits.ts) measures each one, so these tests mean the same with or without a server that
 * enforces the limits itself.
 */
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROW_LIMITS, utf8Bytes } from '../../core/row-limits';
import { ExecutionQueueRepository } from '../../db/repositories/execution-queue-repository';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import type { Database } from '../../db/schema';
import { createHarness, type ApiHarness } from '../api/api-fixtures';
import { openMeteredDatabase, type MeteredDatabase } from '../helpers/metered-data-api';
import { definitionRow, servicesFor } from '../helpers/engine-fixtures';

const KIB = 1024;
const ROW_LIMIT = 64 * KIB;
const RESPONSE_LIMIT = 1024 * KIB;

/** A realistic 30-line script: env, a fork, executes with arguments and Japanese comments. */
function thirtyLineScript(n: number): string {
  const lines = [`env: JOB_NO=${n}`, 'env: RAILS_ENV=production', 'fork:'];
  for (let i = 0; i < 12; i++) lines.push(`  execute: bundle exec rails runner "Batch${i}.run(${n})" # バッチ処理 ${i}`);
  lines.push('sequence:');
  for (let i = 0; i < 14; i++) lines.push(`  execute: ./bin/step-${i}.sh --job ${n} --date "$(date +%F)"`);
  lines.push('noop:');
  return `${lines.join('\n')}\n`;
}

/** Inserts definitions straight into MariaDB, many per statement. */
async function bulkDefinitions(
  db: Kysely<Database>,
  count: number,
  options: { firstId: number; description: (i: number) => string; crons: readonly string[]; suspendCrons?: readonly string[] },
): Promise<number[]> {
  const at = new Date('2026-01-01T00:00:00.000Z');
  const ids: number[] = [];
  const BATCH = 200;
  for (let start = 0; start < count; start += BATCH) {
    const rows = [];
    const schedules: { id: number; job_definition_id: number; cron: string; created_at: Date }[] = [];
    const suspends: { id: number; job_definition_id: number; cron: string; created_at: Date }[] = [];
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      const id = options.firstId + i * 10;
      ids.push(id);
      rows.push(definitionRow(id, thirtyLineScript(i), { name: `バッチ ${i}`, description: options.description(i), timeZone: 'Asia/Tokyo', preventMulti: 1, createdAt: at }));
      options.crons.forEach((cron, k) => schedules.push({ id: id + 1 + k, job_definition_id: id, cron, created_at: at }));
      (options.suspendCrons ?? []).forEach((cron, k) => suspends.push({ id: id + 5 + k, job_definition_id: id, cron, created_at: at }));
    }
    await db.insertInto('job_definitions').values(rows).execute();
    if (schedules.length > 0) await db.insertInto('job_schedules').values(schedules).execute();
    if (suspends.length > 0) await db.insertInto('job_suspend_schedules').values(suspends).execute();
  }
  return ids;
}

describe('data-api limits: wide text users type fits a 64 KB row', () => {
  let ldb: MeteredDatabase;
  let h: ApiHarness;
  beforeAll(async () => {
    ldb = await openMeteredDatabase();
    h = await createHarness(ldb.tdb);
  });
  afterAll(async () => {
    await ldb?.close();
  });

  it('refuses a description of 64 KB of Japanese (counted in bytes) with a 422, and reads back the largest allowed one', async () => {
    // 21,846 characters: far under the old 65,536-character limit, 65,538 bytes of UTF-8.
    const tooWide = 'あ'.repeat(21_846);
    const refused = await h.call('POST', '/v1/definitions', { body: { name: 'wide', script: 'noop:\n', description: tooWide } });
    expect(refused.status).toBe(422);
    // Bytes, not characters: 6,000 characters of Japanese are 18,000 bytes.
    const overBytes = await h.call('POST', '/v1/definitions', { body: { name: 'wide', script: 'noop:\n', description: 'あ'.repeat(6000) } });
    expect(overBytes.status).toBe(422);
    expect(await overBytes.text()).toContain(`18000 bytes of UTF-8 (maximum is ${ROW_LIMITS.descriptionBytes} bytes`);
    const scriptTooWide = `${'echo: '.concat('い'.repeat(1000), '\n').repeat(6)}`;
    const refusedScript = await h.call('POST', '/v1/definitions', { body: { name: 'wide script', script: scriptTooWide } });
    expect(refusedScript.status).toBe(422);

    // The largest description and script allowed, both Japanese.
    const description = 'あ'.repeat(Math.floor(ROW_LIMITS.descriptionBytes / 3));
    const line = `echo: ${'い'.repeat(100)}\n`;
    const script = line.repeat(Math.floor(ROW_LIMITS.scriptBytes / utf8Bytes(line)));
    const created = await h.call('POST', '/v1/definitions', { body: { name: 'widest allowed', script, description, api_allowed: true } });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: number };
    ldb.meter.reset();
    const got = (await (await h.call('GET', `/v1/definitions/${id}`)).json()) as { description: string; script: string };
    expect(got.description).toBe(description);
    expect(got.script).toBe(script);
    expect(ldb.meter.violations()).toEqual([]);
    // The meter did see the wide row: it measures what matters.
    expect(ldb.meter.stats().maxRowBytes).toBeGreaterThan(30 * KIB);
    expect(ldb.meter.stats().maxRowBytes).toBeLessThan(ROW_LIMIT);
  });

  it('refuses a launch env or an ad-hoc script too wide for the instance rows with a 422', async () => {
    const created = await h.call('POST', '/v1/definitions', { body: { name: 'launchable', script: 'noop:\n', api_allowed: true } });
    const { id } = (await created.json()) as { id: number };
    const env = { NOTE: 'う'.repeat(3000) }; // 9,000 bytes: under the 32 KiB characters of one value, over 8 KiB of env
    const refused = await h.call('POST', `/v1/definitions/${id}/instances`, { body: { env } });
    expect(refused.status).toBe(422);
    expect(await refused.text()).toContain(`maximum is ${ROW_LIMITS.launchEnvBytes} bytes`);
    const script = `echo: ${'え'.repeat(6000)}\n`; // 18,000 bytes
    const refusedScript = await h.call('POST', `/v1/definitions/${id}/instances`, { body: { script } });
    expect(refusedScript.status).toBe(422);
    expect(await ldb.mysql.selectFrom('job_instances').select('id').where('job_definition_id', '=', id).execute()).toEqual([]);
  });

  it('keeps an execution row, its result log line and every read of them under 64 KB whatever the command prints', async () => {
    const created = await h.call('POST', '/v1/definitions', { body: { name: 'talkative', script: 'execute: ./print-japanese.sh\nnoop:\n', api_allowed: true } });
    const { id } = (await created.json()) as { id: number };
    // The widest env a launch may carry: its JSON is 8 KiB less a few bytes.
    const env = { NOTE: 'お'.repeat(Math.floor((ROW_LIMITS.launchEnvBytes - 20) / 3)) };
    const launched = await h.call('POST', `/v1/definitions/${id}/instances`, { body: { env } });
    expect(launched.status, await launched.clone().text()).toBe(201);
    const instance = (await launched.json()) as { id: number };
    for (let i = 0; i < 3; i++) await h.services.processorPass();

    // An agent of the previous release keeps 32 KiB of head and 32 KiB of tail, here all Japanese.
    const queue = new ExecutionQueueRepository(ldb.handle, ldb.tdb.idGenerator);
    const now = new Date();
    const [execution] = await queue.claim({ workerId: 1, hostname: 'old-agent', queues: ['@default'], limit: 1, leaseMs: 60_000, now });
    expect(execution).toBeDefined();
    const head = 'か'.repeat(10_922);
    const tail = 'き'.repeat(10_922);
    await queue.recordStart(execution!.id, execution!.attempt, { pid: 4242, startedAt: now });
    await queue.recordOutput(execution!.id, execution!.attempt, { head, tail });
    ldb.meter.reset();
    const running = await new MonitorRepository(ldb.handle.db, ldb.tdb.idGenerator).findRunningExecutions();
    expect(running.map((e) => e.id)).toEqual([execution!.id]);
    expect(utf8Bytes(running[0]!.outputHead)).toBeLessThanOrEqual(ROW_LIMITS.outputHeadBytes);
    expect(running[0]!.outputTail.endsWith('き')).toBe(true);
    await queue.finish(execution!.id, execution!.attempt, { head, tail, exitStatus: 0, termSignal: null, finishedAt: new Date() });
    for (let i = 0; i < 3; i++) await h.services.processorPass();

    const detail = await h.call('GET', `/v1/definitions/${id}/instances/${instance.id}`);
    expect(((await detail.json()) as { status: string }).status).toBe('success');
    const logs = (await (await h.call('GET', `/v1/definitions/${id}/instances/${instance.id}/logs`)).json()) as { message: string }[];
    const result = logs.find((l) => l.message.includes('[SUCCESS]'));
    expect(result?.message).toContain('かかか');
    expect(result?.message).toContain('ききき');
    expect(ldb.meter.violations()).toEqual([]);
    expect(ldb.meter.stats().maxRowBytes).toBeGreaterThan(16 * KIB);
  });

  it('reads a token and its execution apart when together they could pass 64 KB in one row (issue 18)', async () => {
    // The widest script: one command of 16 KiB of Japanese, so the token holds it (script) and so does the command.
    const script = `execute: echo ${'あ'.repeat(Math.floor((ROW_LIMITS.scriptBytes - 20) / 3))}\n`;
    const created = await h.call('POST', '/v1/definitions', { body: { name: 'widest pair', script, api_allowed: true } });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const env = { NOTE: 'お'.repeat(Math.floor((ROW_LIMITS.launchEnvBytes - 20) / 3)) };
    const launched = await h.call('POST', `/v1/definitions/${id}/instances`, { body: { env } });
    expect(launched.status, await launched.clone().text()).toBe(201);
    const instance = (await launched.json()) as { id: number };
    for (let i = 0; i < 3; i++) await h.services.processorPass();
    const queue = new ExecutionQueueRepository(ldb.handle, ldb.tdb.idGenerator);
    const [execution] = await queue.claim({ workerId: 1, hostname: 'agent', queues: ['@default'], limit: 1, leaseMs: 60_000, now: new Date() });
    expect(execution).toBeDefined();
    const head = 'か'.repeat(Math.floor(ROW_LIMITS.outputHeadBytes / 3));
    const tail = 'き'.repeat(Math.floor(ROW_LIMITS.outputTailBytes / 3));
    await queue.recordStart(execution!.id, execution!.attempt, { pid: 4242, startedAt: new Date() });
    await queue.finish(execution!.id, execution!.attempt, { head, tail, exitStatus: 0, termSignal: null, finishedAt: new Date() });
    ldb.meter.reset();
    for (let i = 0; i < 3; i++) await h.services.processorPass();
    expect(ldb.meter.violations()).toEqual([]);
    const detail = await h.call('GET', `/v1/definitions/${id}/instances/${instance.id}`);
    expect(((await detail.json()) as { status: string }).status).toBe('success');
  });
});

describe('data-api limits: a scheduler pass over 10,000 definitions', () => {
  const DEFINITIONS = 10_000;
  let ldb: MeteredDatabase;
  beforeAll(async () => {
    ldb = await openMeteredDatabase();
    // ~2 KB of Japanese description and a 30-line script each, two schedules, every tenth with a suspend schedule.
    const ids = await bulkDefinitions(ldb.mysql, DEFINITIONS, {
      firstId: 1_000_000,
      description: (i) => `## バッチ ${i}\n${'毎日の集計処理を実行します。'.repeat(48)}`,
      crons: ['0 3 * * *', '30 * * * *'],
    });
    const at = new Date('2026-01-01T00:00:00.000Z');
    const suspends = ids.filter((_, i) => i % 10 === 0).map((id) => ({ id: id + 7, job_definition_id: id, cron: '* * * * 0', created_at: at }));
    for (let i = 0; i < suspends.length; i += 500) await ldb.mysql.insertInto('job_suspend_schedules').values(suspends.slice(i, i + 500)).execute();
  }, 300_000);
  afterAll(async () => {
    await ldb?.close();
  });

  it('reads every scheduled definition with SQL texts and responses within the limits', async () => {
    const services = servicesFor(ldb.tdb);
    ldb.meter.reset();
    const scheduled = await services.schedules.listScheduledDefinitions();
    expect(scheduled).toHaveLength(DEFINITIONS);
    expect(scheduled.every((s) => s.crons.length === 2)).toBe(true);
    expect(scheduled.filter((s) => s.suspendCrons.length === 1)).toHaveLength(DEFINITIONS / 10);
    const stats = ldb.meter.stats();
    expect(ldb.meter.violations()).toEqual([]);
    expect(stats.maxResponseBytes).toBeLessThan(RESPONSE_LIMIT);
    expect(stats.maxSqlChars).toBeLessThan(65_536 / 4);

    // A whole pass (no slot due in the minute it looks at) reads the same way. The first one records every
    // schedule's next fire time: schedules firing at the same time share an UPDATE, so 20,000 schedules cost a
    // few hundred statements, not one each.
    ldb.meter.reset();
    await services.schedulerPass();
    expect(ldb.meter.stats().statements).toBeLessThan(DEFINITIONS / 10);
    await services.schedulerPass();
    expect(ldb.meter.violations()).toEqual([]);
  }, 300_000);
});

describe('data-api limits: GET /v1/definitions without a limit', () => {
  const DEFINITIONS = 150;
  let ldb: MeteredDatabase;
  let h: ApiHarness;
  let ids: number[];
  beforeAll(async () => {
    ldb = await openMeteredDatabase();
    h = await createHarness(ldb.tdb);
    // 12,000 bytes of description each: 1.8 MB in all, more than one Data API response can carry.
    ids = await bulkDefinitions(ldb.mysql, DEFINITIONS, { firstId: 10_000, description: (i) => `${i}:${'お'.repeat(4000)}`, crons: [] });
  }, 120_000);
  afterAll(async () => {
    await ldb?.close();
  });

  it('returns every definition, read from the database in pages that fit', async () => {
    ldb.meter.reset();
    const res = await h.call('GET', '/v1/definitions', { as: 'read' });
    expect(res.status).toBe(200);
    const listed = (await res.json()) as { id: number; description: string }[];
    expect(listed.map((d) => d.id)).toEqual(ids);
    expect(listed.every((d, i) => d.description.startsWith(`${i}:`))).toBe(true);
    expect(ldb.meter.violations()).toEqual([]);
    expect(ldb.meter.stats().maxResponseBytes).toBeLessThan(RESPONSE_LIMIT);
  });

  it('pages with limit and after_id, and filters by tag, the same way', async () => {
    await ldb.mysql.insertInto('tags').values({ id: 5, name: 'nightly', created_at: new Date() }).execute();
    await ldb.mysql
      .insertInto('job_definition_tags')
      .values(ids.filter((_, i) => i % 3 === 0).map((id) => ({ job_definition_id: id, tag_id: 5 })))
      .execute();
    ldb.meter.reset();
    const page = (await (await h.call('GET', `/v1/definitions?limit=100&after_id=${ids[9]}`, { as: 'read' })).json()) as { id: number }[];
    expect(page.map((d) => d.id)).toEqual(ids.slice(10, 110));
    const tagged = (await (await h.call('GET', '/v1/definitions?tags[]=nightly', { as: 'read' })).json()) as { id: number; tags: string[] }[];
    expect(tagged.map((d) => d.id)).toEqual(ids.filter((_, i) => i % 3 === 0));
    expect(tagged.every((d) => d.tags.includes('nightly'))).toBe(true);
    expect(ldb.meter.violations()).toEqual([]);
  });
});
