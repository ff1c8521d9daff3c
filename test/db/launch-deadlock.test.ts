/**
 * A launch that InnoDB picks as a deadlock victim is run again instead of failing the API call. InnoDB rolls the
 * victim back whole, and the remedy is to run it again ("Always be prepared to re-issue a transaction if it fails due
 * to deadlock": https://dev.mysql.com/doc/refman/8.0/en/innodb-deadlocks-handling.html). bench:throughput's W3 met
 * one: a pass held tokens while a launch inserted one.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngineServices } from '../../app/engine-services';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

let tdb: TestDatabase;
let other: DatabaseHandle;
/** Reads the lock waits on a connection of its own: the launch's ids come through tdb's. */
let watcher: DatabaseHandle;

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  other = createDatabase(tdb.url, { poolSize: 1 });
  watcher = createDatabase(tdb.url, { poolSize: 1 });
});
afterAll(async () => {
  await other?.close();
  await watcher?.close();
  await tdb?.close();
});

/** Transactions of this database waiting for a lock. */
async function lockWaits(): Promise<number> {
  const result = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
    WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`.execute(watcher.db);
  return Number(result.rows[0]!.n);
}

it('runs a launch again when it was the victim of a deadlock, and it succeeds', async () => {
  await insertDefinition(tdb.db, 1, 'noop:\n');
  await sql`CREATE TABLE weight (id INT PRIMARY KEY, n INT NOT NULL)`.execute(tdb.db);
  await sql`INSERT INTO weight SELECT seq, 0 FROM seq_1_to_200`.execute(tdb.db);
  // The launch's statements that went through: a launch that was run again inserted its instance twice.
  const instanceInserts: string[] = [];
  const launcher = createDatabase(tdb.url, { log: (event) => void (event.level === 'query' && /^insert into .job_instances./.test(event.query.sql) && instanceInserts.push(event.query.sql)) });
  const services = createEngineServices(launcher, { ids: tdb.idGenerator });
  let launching: Promise<unknown> | undefined;
  await other.db.transaction().execute(async (trx) => {
    // Another transaction that has changed many rows (InnoDB rolls back the one that changed fewer) holds every
    // token and the gap after them, so the launch's INSERT of its token waits for it.
    await sql`UPDATE weight SET n = n + 1`.execute(trx);
    await sql`SELECT id FROM tokens FOR UPDATE`.execute(trx);
    launching = services.operations.launch({ definitionId: 1, launchedBy: 'test' }).then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    // Polled every 200 ms, not faster: InnoDB serves INNODB_TRX from a buffer "refreshed only if more than 0.1
    // seconds has elapsed since the last time the buffer was read", so a poll every few ms reads the snapshot taken
    // before the launch waited, for ever (https://dev.mysql.com/doc/refman/5.7/en/innodb-information-schema-internal-data.html).
    await waitFor(async () => (await lockWaits()) > 0, { timeoutMs: 10_000, intervalMs: 200, description: 'the launch to wait for the tokens' });
    // Then it asks for the definition the launch locked: a cycle, and the launch is the victim.
    await sql`SELECT id FROM job_definitions WHERE id = 1 FOR UPDATE`.execute(trx);
  });
  const outcome = (await launching) as { result?: { instance: { id: number } }; error?: unknown };
  expect(outcome.error).toBeUndefined();
  const instanceId = outcome.result!.instance.id;
  expect(await tdb.db.selectFrom('tokens').select('id').where('job_instance_id', '=', instanceId).execute()).toHaveLength(1);
  expect(await tdb.db.selectFrom('job_instances').select('id').where('id', '=', instanceId).execute()).toHaveLength(1);
  // It was the victim (its first transaction rolled back after its INSERT of the instance), then ran again.
  expect(instanceInserts).toHaveLength(2);
  await launcher.close();
});
