import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLogSink } from '../../adapters/logs/file-log-sink';
import { planRetention, runRetentionPass, type RetentionPassResult } from '../../core/services/retention-service';
import { fromDbInt } from '../../db/column-codec';
import { createDatabase } from '../../db/connection';
import { RetentionRepository } from '../../db/repositories/retention-repository';
import type { Database } from '../../db/schema';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const NOW = new Date('2026-06-01T12:00:00.000Z');
const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);

/** Tables holding rows about an instance, with the column naming it. */
const CHILD_TABLES = ['tokens', 'executions', 'execution_histories', 'instance_logs', 'events', 'memory_samples'] as const;

const DEF_GLOBAL = 10;
const DEF_SHORT = 20; // retention_days 10
const DEF_FOREVER = 30; // retention_days 0
const DEF_GONE = 40; // no definition row

type Kind = 'finished' | 'canceled' | 'error' | 'working' | 'error-then-canceled';
interface Seed {
  id: number;
  definitionId: number;
  kind: Kind;
  /** Days ago the instance was created and ended (or went in error). */
  age: number;
  expectDeleted: boolean;
}

const SEEDS: Seed[] = [
  { id: 1000, definitionId: DEF_GLOBAL, kind: 'finished', age: 100, expectDeleted: true },
  { id: 1100, definitionId: DEF_GLOBAL, kind: 'canceled', age: 91, expectDeleted: true },
  { id: 1200, definitionId: DEF_GLOBAL, kind: 'error-then-canceled', age: 200, expectDeleted: true },
  { id: 1300, definitionId: DEF_GLOBAL, kind: 'finished', age: 89, expectDeleted: false },
  { id: 1400, definitionId: DEF_GLOBAL, kind: 'error', age: 300, expectDeleted: false },
  { id: 1500, definitionId: DEF_GLOBAL, kind: 'working', age: 300, expectDeleted: false },
  { id: 1600, definitionId: DEF_GLOBAL, kind: 'canceled', age: 10, expectDeleted: false },
  { id: 2000, definitionId: DEF_SHORT, kind: 'finished', age: 11, expectDeleted: true },
  { id: 2100, definitionId: DEF_SHORT, kind: 'canceled', age: 30, expectDeleted: true },
  { id: 2200, definitionId: DEF_SHORT, kind: 'finished', age: 9, expectDeleted: false },
  { id: 2300, definitionId: DEF_SHORT, kind: 'error', age: 50, expectDeleted: false },
  { id: 3000, definitionId: DEF_FOREVER, kind: 'finished', age: 1000, expectDeleted: false },
  { id: 3100, definitionId: DEF_FOREVER, kind: 'canceled', age: 400, expectDeleted: false },
  { id: 4000, definitionId: DEF_GONE, kind: 'finished', age: 95, expectDeleted: true },
  // More old instances of the global policy, so a pass with batches of 2 needs several.
  ...[0, 1, 2, 3].map((i) => ({ id: 5000 + i * 100, definitionId: DEF_GLOBAL, kind: 'finished' as const, age: 120 + i, expectDeleted: true })),
];

function definitionRow(id: number, retentionDays: number | null) {
  return {
    id,
    name: `retention-${id}`,
    description: '',
    script: 'noop:',
    time_zone: 'UTC',
    suspended: false,
    prevent_multi: 0 as const,
    notify_cancellation: false,
    notify_all: false,
    api_allowed: false,
    slack_channel: '',
    webhook_url: null,
    catch_up_window_minutes: 0,
    retention_days: retentionDays,
    version: 0,
    created_at: daysAgo(2000),
    updated_at: daysAgo(2000),
  };
}

/** Writes an instance with one of every child row; child ids are the instance id plus 1..9. */
async function seedInstance(t: TestDatabase, s: Seed): Promise<void> {
  const at = daysAgo(s.age);
  const db = t.db;
  await db
    .insertInto('job_instances')
    .values({
      id: s.id,
      job_definition_id: s.definitionId,
      script: 'noop:',
      launched_by: 'test',
      retrying: false,
      env: '{}',
      idempotency_key: null,
      idempotency_fingerprint: null,
      created_at: at,
      finished_at: s.kind === 'finished' ? at : null,
      canceled_at: s.kind === 'canceled' || s.kind === 'error-then-canceled' ? at : null,
      error_at: s.kind === 'error' || s.kind === 'error-then-canceled' ? at : null,
    })
    .execute();
  const ids = { def: s.definitionId, inst: s.id };
  await db
    .insertInto('tokens')
    .values({ id: s.id + 1, uuid: `t-${s.id}`, job_instance_id: s.id, job_definition_id: ids.def, parent_id: null, script: 'noop:', path: '/', status: 'finished', message: '', context: '{}', version: 0, created_at: at, updated_at: at })
    .execute();
  await db
    .insertInto('executions')
    .values({ id: s.id + 2, uuid: `e-${s.id}`, token_id: s.id + 1, job_instance_id: s.id, job_definition_id: ids.def, queue: '@default', shell: 'true', env: '{}', created_at: at, worker_id: null, hostname: null, lease_expires_at: null, claimed_at: null, pid: null, started_at: null, finished_at: null, exit_status: null, term_signal: null, output_head: '', output_tail: '', kill_requested_at: null, lost_reason: null })
    .execute();
  await db
    .insertInto('execution_histories')
    .values({ id: s.id + 3, execution_id: s.id + 4, job_instance_id: s.id, job_definition_id: ids.def, token_id: s.id + 1, queue: '@default', shell: 'true', hostname: null, worker_id: null, pid: null, started_at: at, finished_at: at, exit_status: 0, term_signal: null })
    .execute();
  await db
    .insertInto('instance_logs')
    .values([
      { id: s.id + 5, job_instance_id: s.id, level: 'INFO', message: 'one', created_at: at },
      { id: s.id + 6, job_instance_id: s.id, level: 'INFO', message: 'two', created_at: at },
    ])
    .execute();
  await db
    .insertInto('events')
    .values({ id: s.id + 7, type: 'launch', job_instance_id: s.id, job_definition_id: ids.def, token_id: null, message: '', created_at: at })
    .execute();
  await db
    .insertInto('event_deliveries')
    .values({ id: s.id + 8, event_id: s.id + 7, channel: 'slack', status: 'delivered', attempts: 1, next_attempt_at: at, delivered_at: at, last_error: null })
    .execute();
  await db
    .insertInto('memory_samples')
    .values({ id: s.id + 9, execution_id: s.id + 2, job_instance_id: s.id, job_definition_id: ids.def, rss_kb: 1, sampled_at: at })
    .execute();
  await db
    .insertInto('process_signals')
    .values({ id: s.id + 10, execution_id: s.id + 2, attempt: 1, signal: 'SIGTERM', reason: 'test', requested_at: at, delivered_at: null, result: null })
    .execute();
  await db
    .insertInto('schedule_slots')
    .values({ id: s.id + 11, job_definition_id: ids.def, scheduled_at: new Date(at.getTime() + s.id * 1000), cron: '* * * * *', outcome: 'launched', job_instance_id: s.id, created_at: at })
    .execute();
}

async function idsOf(t: TestDatabase, table: keyof Database & (typeof CHILD_TABLES)[number] | 'job_instances'): Promise<number[]> {
  const column = table === 'job_instances' ? 'id' : 'job_instance_id';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one query over several tables
  const rows: { v: unknown }[] = await (t.db as any).selectFrom(table).select(`${column} as v`).execute();
  return [...new Set(rows.map((r) => fromDbInt(r.v as number)))].sort((a, b) => a - b);
}

async function survivingInstanceIdsEverywhere(t: TestDatabase): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { job_instances: await idsOf(t, 'job_instances') };
  for (const table of CHILD_TABLES) out[table] = await idsOf(t, table);
  const deliveries = await t.db.selectFrom('event_deliveries').select('event_id').execute();
  out.event_deliveries = deliveries.map((r) => fromDbInt(r.event_id) - 7).sort((a, b) => a - b);
  const signals = await t.db.selectFrom('process_signals').select('execution_id').execute();
  out.process_signals = signals.map((r) => fromDbInt(r.execution_id) - 2).sort((a, b) => a - b);
  return out;
}

describe('retention planning', () => {
  it('uses the global policy unless a definition has its own; 0 keeps forever', () => {
    const plan = planRetention(NOW, 90, [
      { definitionId: 1, retentionDays: 7 },
      { definitionId: 2, retentionDays: 0 },
      { definitionId: 3, retentionDays: null },
    ]);
    expect(plan.rules).toEqual([{ cutoff: daysAgo(90) }, { definitionId: 1, cutoff: daysAgo(7) }]);
    expect(plan.overriddenDefinitionIds).toEqual([1, 2]);
    expect(planRetention(NOW, 0, [{ definitionId: 1, retentionDays: 30 }]).rules).toEqual([{ definitionId: 1, cutoff: daysAgo(30) }]);
  });
});

describeEachDialect('retention pass', (dialect) => {
  let t: TestDatabase;
  let logDir: string;
  let sink: FileLogSink;
  let first: RetentionPassResult;
  let removed: number[] = [];

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
    logDir = mkdtempSync(join(tmpdir(), 'kuroko-retention-'));
    sink = new FileLogSink(logDir);
    await t.db
      .insertInto('job_definitions')
      .values([definitionRow(DEF_GLOBAL, null), definitionRow(DEF_SHORT, 10), definitionRow(DEF_FOREVER, 0)])
      .execute();
    for (const s of SEEDS) {
      await seedInstance(t, s);
      // Output files of the live execution row and of the history's execution.
      await sink.append(s.id + 2, 'output\n');
      await sink.append(s.id + 4, 'output\n');
    }
    await sink.closeAll();
  });
  afterAll(async () => {
    await t?.close();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  const store = () => new RetentionRepository(t.db);
  const clock = { now: () => NOW };
  const removeOutput = async (ids: readonly number[]) => {
    removed.push(...ids);
    for (const id of ids) await sink.remove(id);
  };

  it('deletes ended instances older than their cut-off with every row about them, in several small batches', async () => {
    first = await runRetentionPass({ store: store(), clock, globalDays: 90, batchSize: 2, removeOutput });
    const deleted = SEEDS.filter((s) => s.expectDeleted).map((s) => s.id);
    const kept = SEEDS.filter((s) => !s.expectDeleted).map((s) => s.id).sort((a, b) => a - b);
    expect(first.deletedInstances).toBe(deleted.length);
    // 8 instances under the global policy in batches of 2, then 2 of the 10-day definition.
    expect(first.batches).toBeGreaterThanOrEqual(5);

    const left = await survivingInstanceIdsEverywhere(t);
    for (const [table, ids] of Object.entries(left)) expect({ table, ids }).toEqual({ table, ids: kept });

    // Schedule slots keep their launch key and lose the deleted instance.
    const slots = await t.db.selectFrom('schedule_slots').select(['id', 'job_instance_id']).orderBy('id').execute();
    expect(slots).toHaveLength(SEEDS.length);
    for (const slot of slots) {
      const seed = SEEDS.find((s) => s.id + 11 === fromDbInt(slot.id))!;
      expect(slot.job_instance_id === null ? null : fromDbInt(slot.job_instance_id)).toBe(seed.expectDeleted ? null : seed.id);
    }

    // Output files of the deleted executions are gone, the others stay.
    expect(removed.sort((a, b) => a - b)).toEqual(deleted.flatMap((id) => [id + 2, id + 4]).sort((a, b) => a - b));
    const files = (await readdir(logDir)).sort();
    expect(files).toEqual(kept.flatMap((id) => [`${id + 2}.log`, `${id + 4}.log`]).sort());
  });

  it('a second run deletes nothing', async () => {
    const before = await survivingInstanceIdsEverywhere(t);
    removed = [];
    const second = await runRetentionPass({ store: store(), clock, globalDays: 90, batchSize: 2, removeOutput });
    expect(second).toEqual({ deletedInstances: 0, batches: 0, removedOutputs: 0, stoppedEarly: false });
    expect(await survivingInstanceIdsEverywhere(t)).toEqual(before);
  });

  it('a full batch of 500 stays within the Data API statement limit', async () => {
    // The Data API refuses SQL text over 65,536 characters:
    // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html (sql: Length 0-65536).
    const sqls: string[] = [];
    const logged = createDatabase(t.url, { log: (event) => void sqls.push(event.query.sql) });
    try {
      const base = 4_000_000_000_000_000; // 16-digit ids: the longest an IN list of ids gets in practice
      const rows = Array.from({ length: 500 }, (_, i) => ({
        id: base + i, job_definition_id: DEF_GLOBAL, script: 'noop:', launched_by: 'test', retrying: false, env: '{}',
        idempotency_key: null, idempotency_fingerprint: null, created_at: daysAgo(200), finished_at: daysAgo(200), canceled_at: null, error_at: null,
      }));
      for (let i = 0; i < rows.length; i += 100) await t.db.insertInto('job_instances').values(rows.slice(i, i + 100)).execute();
      const pass = await runRetentionPass({ store: new RetentionRepository(logged.db), clock, globalDays: 90, batchSize: 500 });
      expect(pass.deletedInstances).toBe(500);
      expect(pass.batches).toBe(1);
      expect(Math.max(...sqls.map((q) => q.length))).toBeLessThan(65_536);
    } finally {
      await logged.close();
    }
  });

  it('a global policy of 0 keeps everything, and a definition override still applies', async () => {
    await t.db.updateTable('job_definitions').set({ retention_days: 1 }).where('id', '=', DEF_SHORT).execute();
    const pass = await runRetentionPass({ store: store(), clock, globalDays: 0, batchSize: 500 });
    expect(pass.deletedInstances).toBe(1); // 2200, finished 9 days ago; 2300 is in error
    expect(await idsOf(t, 'job_instances')).not.toContain(2200);
    expect(await idsOf(t, 'job_instances')).toEqual(expect.arrayContaining([1300, 1400, 1500, 1600, 2300, 3000, 3100]));
  });
});
