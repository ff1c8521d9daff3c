import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fromDbBool, fromDbTime, fromNullableDbTime } from '../../db/column-codec';
import type { DatabaseHandle } from '../../db/connection';
import { isDuplicateKeyError, isRetryableLockError } from '../../db/db-errors';
import { createIdGenerator } from '../../db/id-generator';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import type { MigrationRun } from '../../db/migrator';
import type { Database } from '../../db/schema';
import { createTestDatabase, describeEachDialect } from '../helpers/test-database';
import type { TestDatabase } from '../helpers/test-database';

const ALL_TABLES: (keyof Database)[] = [
  'job_definitions', 'tags', 'job_definition_tags', 'script_revisions', 'job_schedules', 'job_suspend_schedules',
  'job_instances', 'tokens', 'executions', 'execution_histories', 'workers', 'process_signals', 'instance_logs',
  'events', 'event_deliveries', 'schedule_slots', 'scheduler_state', 'api_clients', 'memory_samples', 'alerts',
  'id_blocks', 'leases',
];

/** Instants at the edges of DST changes (US and EU), far dates, and sub-second values. */
const INSTANTS = [
  '2026-03-08T06:59:59.999Z', // one ms before US clocks spring forward (02:00 EST)
  '2026-03-08T07:00:00.000Z',
  '2026-03-29T00:59:59.999Z', // EU spring forward
  '2026-03-29T01:00:00.001Z',
  '2026-11-01T05:59:59.999Z', // US fall back: 01:59:59.999 EDT
  '2026-11-01T06:00:00.000Z', // 01:00:00 EST, the repeated local hour
  '2026-10-25T00:59:59.999Z', // EU fall back
  '1970-01-01T00:00:00.000Z',
  '2038-01-19T03:14:08.123Z', // past the 32-bit TIMESTAMP range
  '2099-12-31T23:59:59.999Z',
].map((s) => new Date(s));

const MULTIBYTE = 'ジョブ 🍣 失敗しました — naïve 𠮷野家 👩‍👩‍👧‍👦 ';

function memorySampleRow(id: number, sampledAt: Date) {
  return { id, execution_id: 1, job_instance_id: 2, job_definition_id: 3, rss_kb: 42, sampled_at: sampledAt };
}

describeEachDialect('database foundation', (dialect) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates every table, and running the migrations again changes nothing', async () => {
    const tables = (await t.db.introspection.getTables()).map((table) => table.name);
    expect(tables).toEqual(expect.arrayContaining(ALL_TABLES));
    await expect(migrateToLatest(t.db)).resolves.toEqual({ applied: [] });
    await expect(migrateToLatest(t.db)).resolves.toEqual({ applied: [] });
    const block = await t.db.selectFrom('id_blocks').selectAll().execute();
    expect(block).toHaveLength(1);
  });

  it('reads times back equal to the millisecond, including around DST changes', async () => {
    const base = 1_000;
    await t.db
      .insertInto('memory_samples')
      .values(INSTANTS.map((at, i) => memorySampleRow(base + i, at)))
      .execute();
    const rows = await t.db
      .selectFrom('memory_samples')
      .select(['id', 'sampled_at'])
      .where('id', '>=', base)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => fromDbTime(r.sampled_at).toISOString())).toEqual(INSTANTS.map((d) => d.toISOString()));

    // Comparisons order times the same way on every engine (SQLite compares the stored text).
    const pivot = new Date('2026-03-08T07:00:00.000Z');
    const before = await t.db
      .selectFrom('memory_samples')
      .select('id')
      .where('id', '>=', base)
      .where('sampled_at', '<', pivot)
      .execute();
    expect(before.length).toBe(INSTANTS.filter((d) => d < pivot).length);
    const exact = await t.db.selectFrom('memory_samples').select('id').where('sampled_at', '=', pivot).execute();
    expect(exact.map((r) => r.id)).toEqual([base + 1]);
  });

  it('round-trips booleans, nulls and long multi-byte text', async () => {
    const now = new Date('2026-01-02T03:04:05.678Z');
    // About 57 KB of UTF-8 (700 × 82 bytes): on Aurora a row of a result set must fit the Data API's 64 KB
    // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html), which the local
    // server enforces; this row holds the description and a few short columns.
    const longText = MULTIBYTE.repeat(700);
    await t.db
      .insertInto('job_definitions')
      .values([
        {
          id: 10, name: 'on', description: longText, script: 'execute: echo 🍣', time_zone: 'Asia/Tokyo',
          suspended: true, prevent_multi: 1, notify_cancellation: false, notify_all: true, api_allowed: true,
          slack_channel: '#ジョブ', webhook_url: null, catch_up_window_minutes: 30, version: 0,
          created_at: now, updated_at: now,
        },
        {
          id: 11, name: 'off', description: '', script: '', time_zone: 'UTC', suspended: false, prevent_multi: 0,
          notify_cancellation: true, notify_all: false, api_allowed: false, slack_channel: '',
          webhook_url: 'https://example.com/hook', catch_up_window_minutes: 0, version: 3, created_at: now,
          updated_at: now,
        },
      ])
      .execute();
    const rows = await t.db.selectFrom('job_definitions').selectAll().where('id', 'in', [10, 11]).orderBy('id').execute();
    const [on, off] = rows;
    expect(on && off).toBeTruthy();
    if (!on || !off) return;
    expect(on.description).toBe(longText);
    expect(on.description.length).toBe(longText.length);
    expect(on.slack_channel).toBe('#ジョブ');
    expect(on.script).toBe('execute: echo 🍣');
    expect([on.suspended, on.notify_cancellation, on.notify_all, on.api_allowed].map(fromDbBool)).toEqual([
      true, false, true, true,
    ]);
    expect([off.suspended, off.notify_cancellation, off.notify_all, off.api_allowed].map(fromDbBool)).toEqual([
      false, true, false, false,
    ]);
    expect(on.webhook_url).toBeNull();
    expect(off.webhook_url).toBe('https://example.com/hook');
    expect(typeof on.id).toBe('number');
    expect(on.prevent_multi).toBe(1);
    expect(off.version).toBe(3);
    expect(fromDbTime(on.created_at).toISOString()).toBe(now.toISOString());

    // Booleans filter the same way everywhere.
    const suspended = await t.db.selectFrom('job_definitions').select('id').where('suspended', '=', true).execute();
    expect(suspended.map((r) => r.id)).toEqual([10]);

    // Within the Data API's 64 KB per row too (about 58 KB).
    const logText = `${MULTIBYTE}\n`.repeat(700);
    await t.db
      .insertInto('instance_logs')
      .values({ id: 12, job_instance_id: 1, level: 'INFO', message: logText, created_at: now })
      .execute();
    const log = await t.db.selectFrom('instance_logs').select('message').where('id', '=', 12).executeTakeFirstOrThrow();
    expect(log.message).toBe(logText);

    const instance = {
      id: 13, job_definition_id: 10, script: '', launched_by: 'test', retrying: false, env: '{}',
      idempotency_key: null, created_at: now, finished_at: null, canceled_at: null, error_at: now,
    };
    await t.db.insertInto('job_instances').values(instance).execute();
    const read = await t.db.selectFrom('job_instances').selectAll().where('id', '=', 13).executeTakeFirstOrThrow();
    expect(fromNullableDbTime(read.finished_at)).toBeNull();
    expect(fromNullableDbTime(read.error_at)?.toISOString()).toBe(now.toISOString());
    expect(read.idempotency_key).toBeNull();
  });

  it('recognises duplicate-key errors and nothing else', async () => {
    const at = new Date('2026-05-01T00:00:00.000Z');
    await t.db.insertInto('alerts').values({ id: 20, kind: 'not_assigned', subject: 'execution:1', raised_at: at }).execute();
    const duplicate = await t.db
      .insertInto('alerts')
      .values({ id: 21, kind: 'not_assigned', subject: 'execution:1', raised_at: at })
      .execute()
      .then(() => undefined, (err: unknown) => err);
    expect(duplicate).toBeDefined();
    expect(isDuplicateKeyError(duplicate)).toBe(true);

    const samePrimaryKey = await t.db
      .insertInto('alerts')
      .values({ id: 20, kind: 'other', subject: 'x', raised_at: at })
      .execute()
      .then(() => undefined, (err: unknown) => err);
    expect(isDuplicateKeyError(samePrimaryKey)).toBe(true);

    const otherError = await sql`select * from no_such_table`.execute(t.db).then(() => undefined, (err: unknown) => err);
    expect(otherError).toBeDefined();
    expect(isDuplicateKeyError(otherError)).toBe(false);

    // Two NULL idempotency keys never collide; two equal ones for the same definition do.
    const instance = (id: number, key: string | null) => ({
      id, job_definition_id: 99, script: '', launched_by: 'api', retrying: false, env: '{}', idempotency_key: key,
      created_at: at, finished_at: null, canceled_at: null, error_at: null,
    });
    await t.db.insertInto('job_instances').values([instance(30, null), instance(31, null), instance(32, 'k')]).execute();
    const sameKey = await t.db.insertInto('job_instances').values(instance(33, 'k')).execute().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isDuplicateKeyError(sameKey)).toBe(true);
  });

  it('counts rows matched by an UPDATE even when no value changes (fenced writes rely on it)', async () => {
    const at = new Date('2026-05-01T00:00:00.000Z');
    await t.db.insertInto('scheduler_state').values({ name: 'count', last_pass_at: at, updated_at: at }).execute();
    const same = await t.db.updateTable('scheduler_state').set({ last_pass_at: at }).where('name', '=', 'count').executeTakeFirst();
    expect(Number(same.numUpdatedRows)).toBe(1);
    const none = await t.db.updateTable('scheduler_state').set({ last_pass_at: at }).where('name', '=', 'nope').executeTakeFirst();
    expect(Number(none.numUpdatedRows)).toBe(0);
  });

  it('commits and rolls back transactions', async () => {
    const at = new Date('2026-05-01T00:00:00.000Z');
    await t.db.transaction().execute(async (trx) => {
      await trx.insertInto('tags').values({ id: 40, name: 'committed', created_at: at }).execute();
    });
    await expect(
      t.db.transaction().execute(async (trx) => {
        await trx.insertInto('tags').values({ id: 41, name: 'rolled back', created_at: at }).execute();
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const names = await t.db.selectFrom('tags').select('name').where('id', 'in', [40, 41]).execute();
    expect(names.map((r) => r.name)).toEqual(['committed']);
    expect(t.dataApi?.openTransactions() ?? 0).toBe(0);
  });

  // SQLite serialises writers (BEGIN IMMEDIATE), so two transactions never hold locks crosswise there.
  const hasRowLocks = dialect !== 'sqlite';
  if (hasRowLocks) it('recognises a deadlock as a retryable lock error', async () => {
    const at = new Date('2026-05-01T00:00:00.000Z');
    await t.db.insertInto('scheduler_state').values([
      { name: 'lock-a', last_pass_at: at, updated_at: at },
      { name: 'lock-b', last_pass_at: at, updated_at: at },
    ]).execute();
    const touch = (trx: typeof t.db, name: string) =>
      trx.updateTable('scheduler_state').set({ updated_at: new Date() }).where('name', '=', name).execute();
    let aLocked!: () => void;
    let bLocked!: () => void;
    const aIsLocked = new Promise<void>((resolve) => (aLocked = resolve));
    const bIsLocked = new Promise<void>((resolve) => (bLocked = resolve));
    const outcomes = await Promise.allSettled([
      t.db.transaction().execute(async (trx) => {
        await touch(trx, 'lock-a');
        aLocked();
        await bIsLocked;
        await touch(trx, 'lock-b');
      }),
      t.db.transaction().execute(async (trx) => {
        await aIsLocked;
        await touch(trx, 'lock-b');
        bLocked();
        await touch(trx, 'lock-a');
      }),
    ]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failures).toHaveLength(1);
    expect(isRetryableLockError(failures[0]?.reason)).toBe(true);
    expect(isDuplicateKeyError(failures[0]?.reason)).toBe(false);
    expect(t.dataApi?.openTransactions() ?? 0).toBe(0);
  });

  it('reserves ids ahead so a transaction can take them without a statement', async () => {
    const generator = createIdGenerator(t.db, { blockSize: 5 });
    await generator.ensureAvailable?.(12);
    const reserved = generator.reservations();
    const statementsBefore = t.dataApi?.statementCount();
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) ids.push(await generator.nextId());
    expect(generator.reservations()).toBe(reserved);
    expect(t.dataApi?.statementCount()).toBe(statementsBefore);
    expect(new Set(ids).size).toBe(12);
    await generator.nextId();
    expect(generator.reservations()).toBe(reserved + 1);
  });

  it('sets ids aside for transactions begun together, so none of them reserves inside (issue 18)', async () => {
    // The processor commits up to 16 transactions at once on the Data API. Each made its ids available before its
    // BEGIN, but all counted the same ids: they ran out inside, and the refill waited for a connection the open
    // transactions held (bench:engine hung on the stand-in's pool of 10).
    const generator = createIdGenerator(t.db, { blockSize: 10 });
    const releaseA = await generator.hold!(30);
    const releaseB = await generator.hold!(30);
    const reserved = generator.reservations();
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) ids.push(await generator.nextId());
    expect(generator.reservations()).toBe(reserved);
    expect(new Set(ids).size).toBe(60);
    releaseA();
    releaseB();
    releaseB();
    // Released (twice is harmless): nothing is set aside any more, so a hold asks only for what it needs.
    await generator.ensureAvailable?.(1);
    const before = generator.reservations();
    await generator.hold!(1);
    expect(generator.reservations()).toBe(before);
  });

  it('hands out unique ids to concurrent callers in one process', async () => {
    const generator = createIdGenerator(t.db, { blockSize: 7 });
    const ids = await Promise.all(Array.from({ length: 300 }, () => generator.nextId()));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => Number.isSafeInteger(id) && id > 0)).toBe(true);
    expect(generator.reservations()).toBe(Math.ceil(ids.length / 7));
    expect(generator.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

const execFileAsync = promisify(execFile);
const RUN_MIGRATIONS = fileURLToPath(new URL('../helpers/run-migrations.ts', import.meta.url));

/** Runs the migrations in a separate Node process. */
async function migrateInChildProcess(url: string): Promise<MigrationRun> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', RUN_MIGRATIONS, url], {
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  return JSON.parse(stdout) as MigrationRun;
}

describeEachDialect('concurrency across processes', (dialect) => {
  it('two migrator processes racing on a fresh database apply each migration once and both succeed', async () => {
    const t = await createTestDatabase(dialect, { migrate: false });
    try {
      const runs = await Promise.all([migrateInChildProcess(t.url), migrateInChildProcess(t.url)]);
      expect(runs.flatMap((r) => r.applied).sort()).toEqual(migrationNames());
      const tables = (await t.db.introspection.getTables()).map((table) => table.name);
      expect(tables).toEqual(expect.arrayContaining(ALL_TABLES));
      expect(await t.db.selectFrom('id_blocks').selectAll().execute()).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  // SQLite is covered by the process test: better-sqlite3 waits for locks synchronously, so two handles on one
  // file in one process would block each other.
  if (dialect === 'sqlite') return;
  it('two migrators on separate pools of one process apply each migration once', async () => {
    const t = await createTestDatabase(dialect, { migrate: false });
    const handles: DatabaseHandle[] = [t.openAnother(), t.openAnother()];
    try {
      const runs = await Promise.all(handles.map((h) => migrateToLatest(h.db)));
      expect(runs.flatMap((r) => r.applied).sort()).toEqual(migrationNames());
      const tables = (await t.db.introspection.getTables()).map((table) => table.name);
      expect(tables).toEqual(expect.arrayContaining(ALL_TABLES));
      expect(await t.db.selectFrom('id_blocks').selectAll().execute()).toHaveLength(1);
      await expect(migrateToLatest(t.db)).resolves.toEqual({ applied: [] });
    } finally {
      await Promise.all(handles.map((h) => h.close()));
      await t.close();
    }
  });

  it('three generators in separate connections never hand out the same id', async () => {
    const t = await createTestDatabase(dialect);
    const handles: DatabaseHandle[] = [t.openAnother(), t.openAnother(), t.openAnother()];
    const perGenerator = 2_000;
    const inFlight = 25;
    try {
      const batches = await Promise.all(
        handles.map(async (h) => {
          const generator = createIdGenerator(h.db, { blockSize: 50 });
          const ids: number[] = [];
          while (ids.length < perGenerator) {
            ids.push(...(await Promise.all(Array.from({ length: inFlight }, () => generator.nextId()))));
          }
          return ids;
        }),
      );
      const all = batches.flat();
      expect(all).toHaveLength(3 * perGenerator);
      expect(new Set(all).size).toBe(all.length);
    } finally {
      await Promise.all(handles.map((h) => h.close()));
      await t.close();
    }
  });
});

describe('sqlite: file settings', () => {
  it('uses WAL and a busy timeout', async () => {
    const t = await createTestDatabase('sqlite');
    try {
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db);
      expect(mode.rows[0]?.journal_mode).toBe('wal');
      const timeout = await sql<{ timeout: number }>`pragma busy_timeout`.execute(t.db);
      expect(timeout.rows[0]?.timeout).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });

  it('prepares a statement once and reuses it', async () => {
    const prepare = vi.spyOn(BetterSqlite3.prototype, 'prepare');
    const t = await createTestDatabase('sqlite', { migrate: false });
    try {
      await sql`create table numbers (n integer)`.execute(t.db);
      await sql`insert into numbers values (1), (2), (3)`.execute(t.db);
      prepare.mockClear();
      for (let i = 0; i < 20; i++) expect((await sql<{ n: number }>`select n from numbers where n >= ${1} order by n`.execute(t.db)).rows).toHaveLength(3);
      expect(prepare).toHaveBeenCalledTimes(1);
    } finally {
      prepare.mockRestore();
      await t.close();
    }
  });
});
