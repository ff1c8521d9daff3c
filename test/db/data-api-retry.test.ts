/**
 * The Data API client's retry policy (db/dialects/data-api-retry.ts) over the local Data API server, through Kysely
 * and the real SDK client: a resume is waited out within the budget; throttling is retried (the call was refused
 * before it ran); a server error is retried only where a repeat cannot apply twice (a read outside a transaction).
 */
import { DatabaseErrorException, ServiceUnavailableError } from '@aws-sdk/client-rds-data';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { DatabaseResumingError } from '../../db/dialects/data-api-retry';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

let tdb: TestDatabase;
let handle: DatabaseHandle;
const server = () => {
  if (!tdb.dataApi) throw new Error('a data-api test database has its server');
  return tdb.dataApi;
};
/** A handle whose calls wait at most `budgetMs`. */
const open = (budgetMs: number) => createDatabase(tdb.url, { dataApiRetry: { budgetMs, firstDelayMs: 20, maxDelayMs: 200 } });

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { migrate: false });
  handle = open(5_000);
  await sql`create table notes (id bigint primary key, body varchar(20))`.execute(handle.db);
});
afterAll(async () => {
  await handle?.close();
  await tdb?.close();
});
beforeEach(() => {
  server().setFaults({});
});

const count = async () => Number((await sql<{ n: number }>`select count(*) as n from notes`.execute(handle.db)).rows[0]?.n);

describe('Data API retries', () => {
  it('waits out a resume within its budget, and gives up with DatabaseResumingError after it', async () => {
    server().pause(300);
    await expect(count()).resolves.toBe(0);
    const impatient = open(100);
    try {
      server().pause(60_000);
      const err = await sql`select 1`.execute(impatient.db).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatabaseResumingError);
      expect((err as Error).cause).toMatchObject({ name: 'DatabaseResumingException' });
    } finally {
      await impatient.close();
      server().pause(0);
    }
    await expect(count()).resolves.toBe(0);
  });

  it('retries throttled writes: the service refused them before they ran', async () => {
    const draws = [0.1, 0.1, 0.9];
    server().setFaults({ throttleRate: 0.5, random: () => draws.shift() ?? 0.9 });
    await sql`insert into notes values (1, 'throttled twice')`.execute(handle.db);
    expect(await count()).toBe(1);
  });

  it('retries a read after a server error, but never a write (it may have run) nor a statement in a transaction', async () => {
    server().resetCounts();
    const readDraws = [0.1, 0.1, 0.9, 0.9];
    server().setFaults({ serverErrorRate: 0.5, random: () => readDraws.shift() ?? 0.9 });
    await expect(count()).resolves.toBe(1);
    expect(server().callCount()).toBe(2);

    server().resetCounts();
    server().setFaults({ serverErrorRate: 1, random: () => 0.1 });
    await expect(sql`insert into notes values (2, 'once')`.execute(handle.db)).rejects.toBeInstanceOf(ServiceUnavailableError);
    // One call: neither this client nor the SDK under it repeated the write.
    expect(server().callCount()).toBe(1);

    server().setFaults({});
    const failed = handle.db.transaction().execute(async (trx) => {
      await sql`insert into notes values (3, 'in tx')`.execute(trx);
      server().resetCounts();
      server().setFaults({ serverErrorRate: 1, random: () => 0.1 });
      await sql`select count(*) from notes`.execute(trx);
    });
    await expect(failed).rejects.toBeInstanceOf(ServiceUnavailableError);
    server().setFaults({});
    expect(await count()).toBe(1);
  });

  it('does not retry the errors of the statement itself', async () => {
    server().resetCounts();
    await expect(sql`insert into notes values (1, 'duplicate')`.execute(handle.db)).rejects.toBeInstanceOf(DatabaseErrorException);
    expect(server().callCount()).toBe(1);
  });
});
