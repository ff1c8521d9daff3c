/**
 * Issue 18, AWS W1: a transaction begun ahead of need on the Data API (db/dialects/data-api-dialect.ts
 * TransactionPrimer). The processor function begins it beside its lease's take and its first read; the next
 * transaction takes it, and one nobody took is rolled back before the invocation returns.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import type { DataApiCall } from '../helpers/data-api-server';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

describeEachDialect('transaction primer', (dialect) => {
  let tdb: TestDatabase;
  let handle: DatabaseHandle;
  const calls: DataApiCall[] = [];
  const operations = (from: number) => calls.slice(from).map((c) => c.operation);
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect, { dataApi: { onCall: (call) => calls.push(call) } });
    handle = createDatabase(tdb.url);
  });
  afterAll(async () => {
    await handle?.close();
    await tdb?.close();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  it('exists on the Data API only', () => {
    expect(handle.primer !== undefined).toBe(dialect === 'data-api');
  });

  it('hands its transaction to the next one to begin: one BeginTransaction, sent before that transaction starts', async () => {
    if (!handle.primer) return;
    handle.primer.prime();
    handle.primer.prime();
    // Sent at once, before any transaction asks for it.
    await expect.poll(() => operations(0)).toEqual(['BeginTransaction']);
    await handle.db.transaction().execute(async (trx) => {
      await sql`insert into leases (name, holder, rerun_requests) values ('primer-test', 'me', 0)`.execute(trx);
    });
    expect(operations(0)).toEqual(['BeginTransaction', 'Execute', 'CommitTransaction']);
    expect((await tdb.db.selectFrom('leases').select('holder').where('name', '=', 'primer-test').executeTakeFirst())?.holder).toBe('me');
    // Taken: nothing left to roll back.
    const before = calls.length;
    await handle.primer.release();
    expect(operations(before)).toEqual([]);
    expect(tdb.dataApi!.openTransactions()).toBe(0);
  });

  it('rolls back a primed transaction nobody took, and the next transaction begins its own', async () => {
    if (!handle.primer) return;
    handle.primer.prime();
    await handle.primer.release();
    expect(operations(0)).toEqual(['BeginTransaction', 'RollbackTransaction']);
    expect(tdb.dataApi!.openTransactions()).toBe(0);
    await handle.db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx);
    });
    expect(operations(2)).toEqual(['BeginTransaction', 'Execute', 'CommitTransaction']);
  });
});
