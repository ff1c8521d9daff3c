/**
 * A pass's writes by id lists lock only their rows on MySQL and MariaDB (db/repositories/keyed-writes.ts): the batched
 * fences (token-fences.ts) and the end of instances (step-batch-writer.ts). Their optimizer scans a small table for
 * `col IN (...)` instead of reading it by key, and an UPDATE or DELETE locks every row it scans
 * (https://dev.mysql.com/doc/refman/8.0/en/innodb-locks-set.html): without the forced indexes a pass held every token
 * or command in flight, and a launch or an agent's report waited on it or deadlocked (bench:throughput W2 and W3).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngineServices } from '../../app/engine-services';
import type { StepOutcome } from '../../core/ports';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { fromToken, toToken } from '../../db/repositories/row-mappers';
import { endInstances } from '../../db/repositories/step-batch-writer';
import { FencesMissed, fenceAll } from '../../db/repositories/token-fences';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

let tdb: TestDatabase;
let other: DatabaseHandle;

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  other = createDatabase(tdb.url, { poolSize: 1 });
  // A wait for a lock fails in a second instead of the default 50.
  await sql`SET SESSION innodb_lock_wait_timeout = 1`.execute(other.db);
});
afterAll(async () => {
  await other?.close();
  await tdb?.close();
});

/** The chains of one step each that move these tokens on (or end them), as a pass would have stepped them. */
async function chainsFor(ids: readonly number[], end: boolean, expectedVersion?: (version: number) => number): Promise<StepOutcome[][]> {
  const rows = await tdb.db.selectFrom('tokens').selectAll().where('id', 'in', [...ids]).execute();
  return rows.map((row) => {
    const token = toToken(row);
    const outcome = {
      tokenId: token.id,
      instanceId: token.instanceId,
      expectedVersion: expectedVersion ? expectedVersion(token.version) : token.version,
      token: end ? null : { ...token, version: token.version + 1, message: `moved ${token.id}` },
    };
    return [outcome as unknown as StepOutcome];
  });
}

it('locks only the fenced tokens: another token is written and a new one inserted while the batch is open', async () => {
  await insertDefinition(tdb.db, 1, 'execute: true\n');
  const services = createEngineServices(createDatabase(tdb.url), { ids: tdb.idGenerator });
  const ids: number[] = [];
  for (let i = 0; i < 8; i++) ids.push((await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id);
  const tokens = (await tdb.db.selectFrom('tokens').select(['id', 'job_instance_id']).where('job_instance_id', 'in', ids).orderBy('id').execute()).map((t) => Number(t.id));
  // Most of a small table, as in a busy pass: the optimizer would rather scan it than read it by key.
  const [moved, ended, spare] = [tokens.slice(0, 5), tokens.slice(5, 7), tokens[7]!];
  const template = await tdb.db.selectFrom('tokens').selectAll().where('id', '=', spare).executeTakeFirstOrThrow();
  await tdb.db.transaction().execute(async (trx) => {
    await fenceAll(trx, [...(await chainsFor(moved, false)), ...(await chainsFor(ended, true))], new Date());
    // Another session, while the batch still holds its locks: neither waits (each would time out in a second).
    await other.db.updateTable('tokens').set({ message: 'written beside' }).where('id', '=', spare).execute();
    await other.db
      .insertInto('tokens')
      .values({ ...fromToken(toToken(template)), id: spare + 1_000, uuid: 'inserted beside' })
      .execute();
  });
  const after = await tdb.db.selectFrom('tokens').select(['id', 'message']).where('id', 'in', [...moved, ...ended, spare, spare + 1_000]).orderBy('id').execute();
  expect(after.map((t) => [Number(t.id), t.message])).toEqual([...moved.map((id) => [id, `moved ${id}`]), [spare, 'written beside'], [spare + 1_000, template.message]]);
});

it('throws FencesMissed and writes no token when one fence of the batch misses', async () => {
  const rows = await tdb.db.selectFrom('tokens').select('id').orderBy('id').limit(2).execute();
  const ids = rows.map((r) => Number(r.id));
  const chains = [...(await chainsFor(ids.slice(0, 1), false)), ...(await chainsFor(ids.slice(1), false, (v) => v + 7))];
  const before = await tdb.db.selectFrom('tokens').select(['id', 'version', 'message']).where('id', 'in', ids).orderBy('id').execute();
  await expect(tdb.db.transaction().execute((trx) => fenceAll(trx, chains, new Date()))).rejects.toBeInstanceOf(FencesMissed);
  expect(await tdb.db.selectFrom('tokens').select(['id', 'version', 'message']).where('id', 'in', ids).orderBy('id').execute()).toEqual(before);
});

it("ends instances locking only their tokens and commands: another instance's command is reported meanwhile", async () => {
  await insertDefinition(tdb.db, 2, 'execute: true\n');
  const services = createEngineServices(createDatabase(tdb.url), { ids: tdb.idGenerator });
  const ids: number[] = [];
  for (let i = 0; i < 8; i++) ids.push((await services.operations.launch({ definitionId: 2, launchedBy: 'test' })).instance.id);
  await services.processorPass();
  const commands = await tdb.db.selectFrom('executions').select(['id', 'job_instance_id']).where('job_instance_id', 'in', ids).orderBy('job_instance_id').execute();
  expect(commands).toHaveLength(8);
  const [ended, spare] = [ids.slice(0, 6), commands[7]!];
  await tdb.db.transaction().execute(async (trx) => {
    await endInstances(trx, ended, []);
    // An agent's claim of another instance's command, while the pass that ends these is still open.
    await other.db.updateTable('executions').set({ hostname: 'claimed beside' }).where('id', '=', spare.id).execute();
  });
  expect(await tdb.db.selectFrom('executions').select('id').where('job_instance_id', 'in', ended).execute()).toEqual([]);
  expect(await tdb.db.selectFrom('tokens').select('id').where('job_instance_id', 'in', ended).execute()).toEqual([]);
  const left = await tdb.db.selectFrom('executions').select(['id', 'hostname']).where('id', '=', spare.id).executeTakeFirstOrThrow();
  expect(left.hostname).toBe('claimed beside');
});
