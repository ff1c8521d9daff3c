/**
 * Migration 0004 cuts rows written under the old limits (32 KiB output excerpts, 65,536-character descriptions) to
 * the byte budgets, so none is past the Data API's 64 KB per row
 * (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html).
 */
import { Migrator } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { ROW_LIMITS, utf8Bytes } from '../../core/row-limits';
import { MIGRATIONS } from '../../db/migrations';
import { migrateToLatest } from '../../db/migrator';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const BEFORE = ['0001_initial_schema', '0002_console_users', '0003_idempotency_fingerprint'];

describeEachDialect('migration 0004 cuts wide rows', (dialect) => {
  let tdb: TestDatabase;
  afterEach(async () => {
    await tdb?.close();
  });

  it('cuts old output excerpts, log lines, event messages and descriptions to their byte budgets, and leaves narrow rows alone', async () => {
    tdb = await createTestDatabase(dialect, { migrate: false });
    const before = Object.fromEntries(BEFORE.map((name) => [name, MIGRATIONS[name]!]));
    await new Migrator({ db: tdb.db, provider: { getMigrations: () => Promise.resolve(before) } }).migrateToLatest();

    const at = new Date('2026-01-01T00:00:00.000Z');
    const head = 'か'.repeat(10_922); // 32 KiB of Japanese, as the previous agent kept
    const tail = `${'き'.repeat(10_921)}終`;
    const description = 'あ'.repeat(21_000);
    await insertDefinition(tdb.db, 1, 'noop:\n');
    await tdb.db.updateTable('job_definitions').set({ description }).where('id', '=', 1).execute();
    await insertDefinition(tdb.db, 2, 'noop:\n');
    await tdb.db.updateTable('job_definitions').set({ description: '短い説明' }).where('id', '=', 2).execute();
    await tdb.db
      .insertInto('executions')
      .values({ id: 10, uuid: 'u-10', token_id: 11, job_instance_id: 12, job_definition_id: 1, queue: '@default', shell: 'x', env: '{}', created_at: at, output_head: head, output_tail: tail })
      .execute();
    await tdb.db.insertInto('instance_logs').values({ id: 20, job_instance_id: 12, level: 'INFO', message: `[SUCCESS] ${head}${tail}`, created_at: at }).execute();
    await tdb.db.insertInto('instance_logs').values({ id: 21, job_instance_id: 12, level: 'INFO', message: 'short', created_at: at }).execute();
    await tdb.db.insertInto('events').values({ id: 30, type: 'failure', job_instance_id: 12, job_definition_id: 1, token_id: null, message: head, created_at: at }).execute();

    const run = await migrateToLatest(tdb.db);
    // 0004 runs first; the migrations after it come along.
    expect(run.applied[0]).toBe('0004_row_widths');

    const execution = await tdb.db.selectFrom('executions').select(['output_head', 'output_tail']).executeTakeFirstOrThrow();
    expect(utf8Bytes(execution.output_head)).toBeLessThanOrEqual(ROW_LIMITS.outputHeadBytes);
    expect(head.startsWith(execution.output_head)).toBe(true);
    expect(utf8Bytes(execution.output_tail)).toBeLessThanOrEqual(ROW_LIMITS.outputTailBytes);
    expect(execution.output_tail.endsWith('き終')).toBe(true);
    const logs = await tdb.db.selectFrom('instance_logs').select(['id', 'message']).orderBy('id').execute();
    expect(utf8Bytes(logs[0]!.message)).toBeLessThanOrEqual(ROW_LIMITS.logMessageBytes);
    expect(logs[0]!.message.startsWith('[SUCCESS] かか')).toBe(true);
    expect(logs[0]!.message.endsWith('(truncated to fit the database row) …')).toBe(true);
    expect(logs[1]!.message).toBe('short');
    const event = await tdb.db.selectFrom('events').select('message').executeTakeFirstOrThrow();
    expect(utf8Bytes(event.message)).toBeLessThanOrEqual(ROW_LIMITS.eventMessageBytes);
    const definitions = await tdb.db.selectFrom('job_definitions').select(['id', 'description']).orderBy('id').execute();
    expect(utf8Bytes(definitions[0]!.description)).toBeLessThanOrEqual(ROW_LIMITS.descriptionBytes);
    expect(definitions[0]!.description.endsWith('(truncated to fit the database row) …')).toBe(true);
    expect(definitions[1]!.description).toBe('短い説明');
  });
});
