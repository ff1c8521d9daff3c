/**
 * The Kuroko2 importer over its real schema in MariaDB (kuroko2-fixture.ts) into each of our dialects: every field
 * after import, the report, a second run changing nothing, a changed row updating, --dry-run writing nothing,
 * collisions refused unless merged, and history.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import { NO_CUSTOM_TASKS } from '../../core/dsl/custom-tasks';
import { fromDbBool, fromDbInt, fromDbTime } from '../../db/column-codec';
import { Kuroko2Source } from '../../db/kuroko2/kuroko2-source';
import { DefinitionRepository } from '../../db/repositories/definition-repository';
import { chunkLogs } from '../../db/repositories/kuroko2-history-import';
import { Kuroko2ImportRepository } from '../../db/repositories/kuroko2-import-repository';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import { expectedPeakKb } from '../../core/services/monitor-service';
import { loadValidationContext } from '../../db/repositories/validation-context-repository';
import type { Database } from '../../db/schema';
import { customTasksFromJson } from '../../app/config/custom-tasks-config';
import { importKuroko2 } from '../../cli/import/kuroko2-importer';
import type { ImportReport, Kuroko2ImportOptions } from '../../cli/import/kuroko2-importer';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect } from '../helpers/test-database';
import type { TestDatabase } from '../helpers/test-database';
import { createKuroko2Fixture, CUSTOM_TASKS_JSON, NIGHTLY } from './kuroko2-fixture';
import type { Kuroko2Fixture } from './kuroko2-fixture';

const CUSTOM_TASKS: CustomTasks = customTasksFromJson(CUSTOM_TASKS_JSON, 'test');
const IMPORTED_IDS = [10, 42, 43, 44, 45, 46];
const clock = { now: () => new Date() };

let fixture: Kuroko2Fixture;
beforeAll(async () => {
  fixture = await createKuroko2Fixture();
});
afterAll(async () => {
  await fixture?.drop();
});

async function runImport(tdb: TestDatabase, options: Partial<Kuroko2ImportOptions> = {}): Promise<ImportReport> {
  const source = Kuroko2Source.open(fixture.url, fixture.prefix);
  try {
    const repository = new Kuroko2ImportRepository(tdb.db, tdb.idGenerator, clock);
    return await importKuroko2(source, repository, await loadValidationContext(tdb.db, clock), {
      dryRun: false,
      merge: false,
      suspendAll: false,
      historyDays: 0,
      timeZone: 'Asia/Tokyo',
      customTasks: CUSTOM_TASKS,
      now: fixture.now,
      ...options,
    });
  } finally {
    await source.close();
  }
}

/** Every row the import may write, per table, as comparable text (ids included). */
async function snapshot(db: Kysely<Database>): Promise<Record<string, string[]>> {
  const tables = [
    'job_definitions', 'tags', 'job_definition_tags', 'job_schedules', 'job_suspend_schedules', 'script_revisions', 'definition_admins',
    'definition_stars', 'console_users', 'memory_expectancies', 'kuroko2_imports', 'job_instances', 'instance_logs', 'execution_histories', 'memory_samples',
  ];
  const out: Record<string, string[]> = {};
  for (const table of tables) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db);
    out[table] = rows.rows
      .map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'imported_at').map(([k, v]) => [k, v instanceof Date ? v.toISOString() : String(v)]))))
      .sort();
  }
  return out;
}

const reasonsOf = (report: ImportReport, id: number) => report.attention.find((a) => a.id === id)?.reasons ?? [];

describeEachDialect('kuroko import kuroko2', (dialect) => {
  let tdb: TestDatabase;
  let first: ImportReport;

  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    first = await runImport(tdb, { historyDays: 7 });
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('keeps every field of a healthy definition, with its id', async () => {
    const repo = new DefinitionRepository(tdb.db, tdb.idGenerator, clock, { rowLocks: false, validationContext: async () => ({}) });
    const d = await repo.get(NIGHTLY.id);
    expect(d).toMatchObject({
      id: 10,
      name: NIGHTLY.name,
      description: NIGHTLY.description,
      script: NIGHTLY.script,
      timeZone: 'Asia/Tokyo',
      suspended: false,
      preventMulti: 2,
      notifyCancellation: false,
      notifyAll: false,
      apiAllowed: true,
      slackChannel: '#ops',
      webhookUrl: 'https://hooks.example.com/kuroko2',
      tags: ['daily', 'バッチ'],
      crons: ['0 3 * * *', '30 4 * * 1-5', '*/15 * * * *', '0 0 1 * *', '0 12 * * 0'],
      suspendCrons: ['* 3 * * 6'],
    });
    const [k2] = (await fixture.query('select created_at, updated_at from kuroko2_job_definitions where id = 10')) as { created_at: Date; updated_at: Date }[];
    expect(d.createdAt.toISOString()).toBe(new Date(k2!.created_at).toISOString());
    expect(d.updatedAt.toISOString()).toBe(new Date(k2!.updated_at).toISOString());

    const row = await sql<{ hipchat_room: string; hipchat_additional_text: string | null }>`select hipchat_room, hipchat_additional_text from job_definitions where id = 10`.execute(tdb.db);
    expect(row.rows[0]).toEqual({ hipchat_room: 'ops-room', hipchat_additional_text: '@here 失敗しました' });

    const admins = await sql<{ email: string }>`select email from definition_admins where job_definition_id = 10 order by email`.execute(tdb.db);
    expect(admins.rows.map((r) => r.email)).toEqual(['alice@example.com', 'eve@example.com']);
    const stars = await sql<{ email: string }>`select email from definition_stars where job_definition_id = 10 order by email`.execute(tdb.db);
    expect(stars.rows.map((r) => r.email)).toEqual(['alice@example.com', 'bob@example.com']);
    const expectancy = await sql<{ expected_kb: number }>`select expected_kb from memory_expectancies where job_definition_id = 10`.execute(tdb.db);
    expect(fromDbInt(expectancy.rows[0]!.expected_kb)).toBe(NIGHTLY.memoryKb);

    const revisions = await tdb.db.selectFrom('script_revisions').select(['script', 'changed_by', 'changed_at']).where('job_definition_id', '=', 10).orderBy('changed_at').execute();
    expect(revisions.map((r) => [r.script, r.changed_by])).toEqual([
      [NIGHTLY.oldScript, 'alice@example.com'],
      [NIGHTLY.script, 'bob@example.com'],
    ]);
    expect(fromDbTime(revisions[1]!.changed_at).getTime()).toBeLessThan(fromDbTime(revisions[0]!.changed_at).getTime() + 400 * 86_400_000);
  });

  it('imports invalid scripts unchanged but suspended, and reports each error with its line', async () => {
    const rows = await tdb.db.selectFrom('job_definitions').select(['id', 'script', 'suspended']).orderBy('id').execute();
    const suspended = Object.fromEntries(rows.map((r) => [fromDbInt(r.id), fromDbBool(r.suspended)]));
    expect(rows.map((r) => fromDbInt(r.id))).toEqual(IMPORTED_IDS);
    expect(suspended).toEqual({ 10: false, 42: true, 43: false, 44: true, 45: true, 46: false });
    expect(rows.find((r) => fromDbInt(r.id) === 42)?.script).toBe('kuroko_runner: remind_failure\n');

    expect(reasonsOf(first, 42)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'invalid_script', line: 1, column: 1, message: expect.stringContaining('kuroko_runner') }),
        expect.objectContaining({ kind: 'suspended_by_import' }),
        expect.objectContaining({ kind: 'admin_without_email' }),
        expect.objectContaining({ kind: 'no_admin' }),
      ]),
    );
    expect(reasonsOf(first, 44)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'invalid_script', line: 2 }),
        expect.objectContaining({ kind: 'invalid_cron', cron: '61 * * * *' }),
        expect.objectContaining({ kind: 'suspended_by_import' }),
      ]),
    );
    const d44 = await tdb.db.selectFrom('job_schedules').select('cron').where('job_definition_id', '=', 44).execute();
    expect(d44.map((r) => r.cron)).toEqual(['0 9 * * *']);
    // Suspended in Kuroko2 already; its suspend cron without a launch cron suspends nothing and is left out.
    // Its queue validates (Kuroko2's workers served it) but is reported: no worker here serves it yet.
    expect(reasonsOf(first, 45).map((r) => r.kind)).toEqual(['suspend_crons_dropped', 'queue_not_served']);
    expect(reasonsOf(first, 45)[1]).toMatchObject({ line: 1, column: 8, message: expect.stringContaining('queue `heavy` is not known') });
    // The custom task, the worker queue, wait and sub_process on imported ids all validate.
    expect(reasonsOf(first, 43)).toEqual([]);
    expect(reasonsOf(first, 46)).toEqual([]);
    expect(reasonsOf(first, 10)).toEqual([]);
  });

  it('counts every kind, reports users without an email, and creates console users for the others', async () => {
    expect(first.refused).toBe(false);
    expect(first.collisions).toEqual([]);
    expect(first.counts.definitions).toEqual({ read: 6, created: 6, updated: 0, unchanged: 0, refused: 0, suspendedByImport: 2, invalidScripts: 2 });
    expect(first.counts).toMatchObject({ schedules: 8, suspendSchedules: 1, tags: 2, admins: 6, stars: 2, memoryExpectancies: 1 });
    expect(first.counts.scriptRevisions).toEqual({ read: 2, added: 7 });
    expect(first.usersWithoutEmail).toEqual([{ id: 3, uid: '1003', name: 'Carol (no email)', adminOf: [42], starred: [43] }]);
    const users = await tdb.db.withTables<{ console_users: { email: string } }>().selectFrom('console_users').select('email').orderBy('email').execute();
    expect(users.map((u) => u.email)).toEqual(['alice@example.com', 'bob@example.com', 'dave@example.com']);
    const block = await tdb.db.selectFrom('id_blocks').select('next_id').executeTakeFirstOrThrow();
    expect(fromDbInt(block.next_id)).toBeGreaterThan(46);
  });

  it('imports finished instances of the last N days with logs, executions and memory peaks', async () => {
    expect(first.counts.history).toEqual({ instances: 3, alreadyImported: 0, logs: 6, executions: 3, memorySamples: 2 });
    const instances = await tdb.db.selectFrom('job_instances').selectAll().where('job_definition_id', '=', 10).orderBy('created_at').execute();
    expect(instances).toHaveLength(3);
    expect(instances.map((i) => [i.finished_at !== null, i.canceled_at !== null, i.error_at !== null])).toEqual([
      [false, true, true],
      [true, false, false],
      [true, false, false],
    ]);
    const logs = await tdb.db.selectFrom('instance_logs').select(['level', 'message']).where('job_instance_id', '=', fromDbInt(instances[0]!.id)).orderBy('created_at').execute();
    expect(logs).toEqual([
      { level: 'INFO', message: "(token abc) Current node is '/0-env'. 日本語" },
      { level: 'ERROR', message: 'bin/report returns 0.\n```\nok 🍣\n```' },
    ]);
    const peaks = await tdb.db.selectFrom('memory_samples').select('rss_kb').where('job_definition_id', '=', 10).orderBy('rss_kb').execute();
    expect(peaks.map((p) => fromDbInt(p.rss_kb))).toEqual([150_000, 180_000]);
    const histories = await tdb.db.selectFrom('execution_histories').select(['shell', 'hostname']).where('job_definition_id', '=', 10).execute();
    expect(histories).toEqual(Array(3).fill({ shell: 'bin/report --date today', hostname: 'worker-1' }));
  });

  it("gives the monitor Kuroko2's memory expectancy as part of the definition's history", async () => {
    const peaks = await new MonitorRepository(tdb.db, tdb.idGenerator).findMemoryPeaksOfDefinitions([10]);
    expect(peaks).toContainEqual({ instanceId: 0, definitionId: 10, maxRssKb: NIGHTLY.memoryKb });
    expect(expectedPeakKb(peaks, 999_999, 10)).toBe(NIGHTLY.memoryKb);
  });

  it('changes nothing when run again, and updates only what changed in Kuroko2', async () => {
    const before = await snapshot(tdb.db);
    const second = await runImport(tdb, { historyDays: 7 });
    expect(second.counts.definitions).toMatchObject({ created: 0, updated: 0, unchanged: 6 });
    expect(second.counts.scriptRevisions.added).toBe(0);
    expect(second.counts.users.created).toBe(0);
    expect(second.counts.history).toMatchObject({ instances: 0, alreadyImported: 3 });
    expect(await snapshot(tdb.db)).toEqual(before);

    await fixture.query("update kuroko2_job_definitions set description = 'édité ✏️', version = version + 1 where id = 46");
    try {
      const third = await runImport(tdb, { historyDays: 7 });
      expect(third.counts.definitions).toMatchObject({ created: 0, updated: 1, unchanged: 5 });
      const d = await tdb.db.selectFrom('job_definitions').select(['description', 'version']).where('id', '=', 46).executeTakeFirstOrThrow();
      expect(d).toEqual({ description: 'édité ✏️', version: 1 });
    } finally {
      await fixture.query("update kuroko2_job_definitions set description = '' where id = 46");
    }
  });

  it('writes nothing on --dry-run and reports what a real run would do', async () => {
    const fresh = await createTestDatabase(dialect);
    try {
      const before = await snapshot(fresh.db);
      const dry = await runImport(fresh, { dryRun: true, historyDays: 7 });
      expect(await snapshot(fresh.db)).toEqual(before);
      expect(dry.dryRun).toBe(true);
      const real = await runImport(fresh, { historyDays: 7 });
      expect({ ...dry, dryRun: false }).toEqual(real);
    } finally {
      await fresh.close();
    }
  });

  it('refuses ids that collide with definitions it did not import, unless merging', async () => {
    const other = await createTestDatabase(dialect);
    try {
      await insertDefinition(other.db, 43, 'noop:', { name: 'native definition' });
      const refused = await runImport(other);
      expect(refused.refused).toBe(true);
      expect(refused.collisions).toEqual([{ id: 43, kuroko2Name: 'custom task job', existingName: 'native definition' }]);
      const rows = await other.db.selectFrom('job_definitions').select(['id', 'name']).execute();
      expect(rows.map((r) => [fromDbInt(r.id), r.name])).toEqual([[43, 'native definition']]);

      const merged = await runImport(other, { merge: true });
      expect(merged.refused).toBe(false);
      expect(merged.counts.definitions).toMatchObject({ created: 5, updated: 1 });
      const d43 = await other.db.selectFrom('job_definitions').select(['name', 'script']).where('id', '=', 43).executeTakeFirstOrThrow();
      expect(d43.name).toBe('custom task job');
      // Merged once, it counts as imported: a second run is no collision.
      expect((await runImport(other)).collisions).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('kuroko import kuroko2 without the custom tasks', () => {
  it('imports a script using an unknown custom task suspended, and reports the task', async () => {
    const tdb = await createTestDatabase('sqlite');
    try {
      const report = await runImport(tdb, { customTasks: NO_CUSTOM_TASKS, suspendAll: true });
      expect(reasonsOf(report, 43)).toEqual(
        expect.arrayContaining([expect.objectContaining({ kind: 'invalid_script', line: 3, message: 'unknown task type `my_project_runner`' })]),
      );
      const rows = await tdb.db.selectFrom('job_definitions').select('suspended').execute();
      expect(rows.every((r) => fromDbBool(r.suspended))).toBe(true);
    } finally {
      await tdb.close();
    }
  });

  it('moves the id sequence past the largest imported id, so new rows never take one', async () => {
    const tdb = await createTestDatabase('sqlite');
    const big = 1_000_000;
    await fixture.query('update kuroko2_job_definitions set id = ? where id = 46', [big]);
    await fixture.query('update kuroko2_admin_assignments set job_definition_id = ? where job_definition_id = 46', [big]);
    try {
      const before = fromDbInt((await tdb.db.selectFrom('id_blocks').select('next_id').executeTakeFirstOrThrow()).next_id);
      expect(before).toBeLessThan(big);
      await runImport(tdb);
      const after = fromDbInt((await tdb.db.selectFrom('id_blocks').select('next_id').executeTakeFirstOrThrow()).next_id);
      expect(after).toBe(big + 1);
    } finally {
      await fixture.query('update kuroko2_admin_assignments set job_definition_id = 46 where job_definition_id = ?', [big]);
      await fixture.query('update kuroko2_job_definitions set id = 46 where id = ?', [big]);
      await tdb.close();
    }
  });

  it('inserts imported log lines in statements of at most 100 rows and 1 MiB of text', () => {
    const line = (bytes: number) => ({ message: 'x'.repeat(bytes) });
    expect(chunkLogs(Array.from({ length: 250 }, () => line(10))).map((c) => c.length)).toEqual([100, 100, 50]);
    expect(chunkLogs([line(600_000), line(600_000), line(2_000_000), line(1)]).map((c) => c.length)).toEqual([1, 1, 1, 1]);
    expect(chunkLogs([line(400_000), line(400_000), line(400_000)]).map((c) => c.length)).toEqual([2, 1]);
    expect(chunkLogs([])).toEqual([]);
  });
});
