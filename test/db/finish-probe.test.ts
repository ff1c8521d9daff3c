/**
 * The finish watch's probe (db/repositories/finish-probe-repository.ts, issue 18): whether commands are in flight,
 * and a signature that changes when one finishes, on every dialect; and on MariaDB a look that reads the finished
 * rows only, not every queued command (the server looks every few milliseconds while work is in flight).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { FinishProbeRepository } from '../../db/repositories/finish-probe-repository';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

/** Queues `copies` commands like the one of `instanceId` (execution rows only, under new ids and tokens). */
async function queueCopies(tdb: TestDatabase, instanceId: number, copies: number, firstId: number): Promise<void> {
  const execution = await tdb.db.selectFrom('executions').selectAll().where('job_instance_id', '=', instanceId).executeTakeFirstOrThrow();
  const ids = Array.from({ length: copies }, (_, i) => firstId + i * 2);
  for (let start = 0; start < ids.length; start += 200) {
    const chunk = ids.slice(start, start + 200);
    // Rows as read, hence the cast.
    await tdb.db.insertInto('executions').values(chunk.map((id) => ({ ...execution, id, uuid: randomUUID(), token_id: id + 1 })) as never).execute();
  }
}

async function oneQueuedCommand(tdb: TestDatabase): Promise<number> {
  await insertDefinition(tdb.db, 1, 'execute: sleep 100\n');
  const services = servicesFor(tdb);
  const instanceId = (await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id;
  for (let pass = 0; pass < 5; pass++) await services.processorPass();
  return instanceId;
}

describeEachDialect('finish probe', (dialect) => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('says whether commands are in flight and changes its signature when one finishes', async () => {
    const probe = new FinishProbeRepository(tdb.db);
    expect((await probe.probe()).inFlight).toBe(false);
    const instanceId = await oneQueuedCommand(tdb);
    await queueCopies(tdb, instanceId, 3, 50_000_000);
    const queued = await probe.probe();
    expect(queued.inFlight).toBe(true);
    await tdb.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 0 }).where('id', '=', 50_000_000).execute();
    const oneFinished = await probe.probe();
    expect(oneFinished.inFlight).toBe(true);
    expect(oneFinished.finishedSignature).not.toBe(queued.finishedSignature);
    expect((await probe.probe()).finishedSignature).toBe(oneFinished.finishedSignature);
    await tdb.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 0 }).execute();
    const allFinished = await probe.probe();
    expect(allFinished.inFlight).toBe(false);
    expect(allFinished.finishedSignature).not.toBe(oneFinished.finishedSignature);
  });
});

it('mysql: reads the finished rows only, however many commands are queued', async () => {
  const tdb = await createTestDatabase('mysql');
  // One connection, so the session's handler counters are the probe's.
  const metered: DatabaseHandle = createDatabase(tdb.url, { poolSize: 1 });
  try {
    const instanceId = await oneQueuedCommand(tdb);
    await queueCopies(tdb, instanceId, 2_000, 50_000_000);
    await tdb.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 0 }).where('id', 'in', [50_000_000, 50_000_002]).execute();
    await sql`ANALYZE TABLE executions`.execute(tdb.db);
    const handlerReads = async () =>
      (await sql<{ Value: string }>`SHOW SESSION STATUS LIKE 'Handler_read%'`.execute(metered.db)).rows.reduce((sum, r) => sum + Number(r.Value), 0);
    const probe = new FinishProbeRepository(metered.db);
    await probe.probe();
    const a = await handlerReads();
    const b = await handlerReads();
    const seen = await probe.probe();
    const rowsRead = (await handlerReads()) - b - (b - a);
    expect(seen.inFlight).toBe(true);
    // Two finished rows and the first queued one, a few index steps each; counting the 2,000 queued read them all.
    expect(rowsRead).toBeLessThan(20);
  } finally {
    await metered.close();
    await tdb.close();
  }
});
