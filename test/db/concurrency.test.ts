/**
 * Invariants under concurrency, on MariaDB (real row locks, real parallel connections): two processors, two
 * schedulers and racing launches each behave as if there were one.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../db/connection';
import { createIdGenerator } from '../../db/id-generator';
import { createEngineServices, type EngineServices } from '../../app/engine-services';
import { finishExecutionsAsAgent, insertDefinition } from '../helpers/engine-fixtures';
import { FakeClock } from '../helpers/in-memory-store';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const INSTANCES = 500;

describe('mysql: concurrency', () => {
  let tdb: TestDatabase;
  const extra: DatabaseHandle[] = [];

  beforeEach(async () => {
    tdb = await createTestDatabase('mysql', { reuse: true });
  });
  afterEach(async () => {
    for (const handle of extra.splice(0)) await handle.close();
    await tdb.close();
  });

  /** Services on their own connection pool and id generator, as another process would have. */
  function anotherProcess(clock?: FakeClock): EngineServices {
    const handle = tdb.openAnother();
    extra.push(handle);
    return createEngineServices(handle, { ids: createIdGenerator(handle.db, { blockSize: 50 }), ...(clock ? { clock } : {}) });
  }

  it('two processors over 500 instances write exactly what one would', async () => {
    await insertDefinition(tdb.db, 1, 'noop:\nexecute: work\nfork:\n  noop:\n  noop:\necho: done\n');
    const launcher = anotherProcess();
    for (let i = 0; i < INSTANCES; i++) await launcher.operations.launch({ definitionId: 1, launchedBy: 'test' });
    const [a, b] = [anotherProcess(), anotherProcess()];
    let lostRaces = 0;
    for (let round = 0; round < 50; round++) {
      const [ra, rb] = await Promise.all([a.processorPass(), b.processorPass()]);
      lostRaces += ra.lostRaces + rb.lostRaces;
      const finished = await finishExecutionsAsAgent(tdb.db);
      if (ra.committed + rb.committed === 0 && finished === 0) break;
    }
    const count = async (table: 'execution_histories' | 'job_instances') =>
      Number((await tdb.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    expect(await count('execution_histories')).toBe(INSTANCES);
    const unfinished = await tdb.db.selectFrom('job_instances').select('id').where('finished_at', 'is', null).execute();
    expect(unfinished).toEqual([]);
    const events = await tdb.db
      .selectFrom('events')
      .select(['type', (eb) => eb.fn.countAll().as('n')])
      .groupBy('type')
      .orderBy('type')
      .execute();
    expect(events.map((e) => [e.type, Number(e.n)])).toEqual([
      ['finished', INSTANCES],
      ['launch', INSTANCES],
    ]);
    const doneLogs = await tdb.db.selectFrom('instance_logs').select((eb) => eb.fn.countAll().as('n')).where('message', 'like', '%) done').executeTakeFirstOrThrow();
    expect(Number(doneLogs.n)).toBe(INSTANCES);
    // The race really happened: some steps were computed by both and written by one.
    expect(lostRaces).toBeGreaterThan(0);
  }, 180_000);

  it('two schedulers over the same hour of slots launch each slot once', async () => {
    const start = new Date('2026-06-01T00:00:00.000Z');
    for (let id = 1; id <= 5; id++) await insertDefinition(tdb.db, id, 'noop:\n', { crons: ['* * * * *'], createdAt: new Date('2026-05-01T00:00:00.000Z') });
    const clocks = [new FakeClock(start), new FakeClock(start)];
    const schedulers = clocks.map((clock) => anotherProcess(clock));
    await Promise.all(schedulers.map((s) => s.schedulerPass()));
    for (let minute = 1; minute <= 60; minute++) {
      for (const clock of clocks) clock.set(new Date(start.getTime() + minute * 60_000 + 5_000));
      await Promise.all(schedulers.map((s) => s.schedulerPass()));
    }
    const perDefinition = await tdb.db
      .selectFrom('job_instances')
      .select(['job_definition_id', (eb) => eb.fn.countAll().as('n')])
      .groupBy('job_definition_id')
      .execute();
    // 60 minutes after the start minute, plus the start minute itself found by the first pass.
    expect(perDefinition.map((r) => Number(r.n))).toEqual([61, 61, 61, 61, 61]);
    const slots = await tdb.db.selectFrom('schedule_slots').select(['outcome']).execute();
    expect(slots.every((s) => s.outcome === 'launched')).toBe(true);
    expect(slots).toHaveLength(5 * 61);
  }, 120_000);

  it('concurrent launches under prevent_multi 1 leave exactly one working instance', async () => {
    await insertDefinition(tdb.db, 1, 'execute: long\n', { preventMulti: 1 });
    const processes = [anotherProcess(), anotherProcess(), anotherProcess(), anotherProcess()];
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => processes[i % processes.length]!.operations.launch({ definitionId: 1, launchedBy: `p${i}` })),
    );
    expect(results.filter((r) => !r.blocked)).toHaveLength(1);
    const working = await tdb.db
      .selectFrom('job_instances')
      .select('id')
      .where('finished_at', 'is', null)
      .where('canceled_at', 'is', null)
      .execute();
    expect(working).toHaveLength(1);
    expect(await tdb.db.selectFrom('tokens').select('id').execute()).toHaveLength(1);
  }, 60_000);
});
