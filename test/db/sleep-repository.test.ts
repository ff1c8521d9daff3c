import { afterEach, beforeEach, expect, it } from 'vitest';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import { SleepRepository } from '../../db/repositories/sleep-repository';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const MINUTE = 60_000;

describeEachDialect('sleep repository', (dialect) => {
  let tdb: TestDatabase;
  let sleeps: SleepRepository;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
    sleeps = new SleepRepository(tdb.db);
  });
  afterEach(async () => {
    await tdb.close();
  });

  it('counts each kind of work in flight, and nothing on an idle database', async () => {
    const now = new Date();
    expect(await sleeps.workInFlight(now)).toEqual({ tokens: 0, executions: 0, workers: 0, pendingDeliveries: 0, unsettledEvents: 0 });

    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'execute: echo hi\n');
    await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    for (let i = 0; i < 3; i++) await services.processorPass();
    const worker = { hostname: 'h', queues: '["@default"]', slots: 1, pids: '{}', started_at: now, suspended: false, draining: false, version: 0 };
    await tdb.db
      .insertInto('workers')
      .values([
        { id: 1, ...worker, heartbeat_at: new Date(now.getTime() - MINUTE) },
        // Lost long ago: the monitor has dealt with it, it keeps nothing awake.
        { id: 2, ...worker, heartbeat_at: new Date(now.getTime() - 120 * MINUTE) },
      ])
      .execute();
    const event = { type: 'launch' as const, job_instance_id: null, job_definition_id: 1, token_id: null, message: 'm' };
    await tdb.db
      .insertInto('events')
      .values([
        { id: 901, ...event, created_at: new Date(now.getTime() - 60 * MINUTE) },
        { id: 902, ...event, created_at: new Date(now.getTime() - 61 * MINUTE) },
      ])
      .execute();
    const delivery = { channel: 'sns', attempts: 1, next_attempt_at: now, delivered_at: null, last_error: null };
    await tdb.db
      .insertInto('event_deliveries')
      .values([
        { id: 1, event_id: 901, status: 'pending', ...delivery },
        { id: 2, event_id: 902, status: 'delivered', ...delivery },
      ])
      .execute();

    const work = await sleeps.workInFlight(now);
    // The launch wrote its own recent event; the two old ones do not count.
    expect(work).toEqual({ tokens: 1, executions: 1, workers: 1, pendingDeliveries: 1, unsettledEvents: 1 });
  });

  it('counts a recent event until the notifier settles it (every channel has its row), then no longer (issue 17)', async () => {
    const now = new Date();
    const event = { type: 'launch' as const, job_instance_id: null, job_definition_id: 1, token_id: null, message: 'm' };
    await tdb.db
      .insertInto('events')
      .values([
        { id: 911, ...event, created_at: new Date(now.getTime() - MINUTE) },
        { id: 912, ...event, created_at: new Date(now.getTime() - 2 * MINUTE) },
        // Unsettled, but older than RECENT_EVENT_MS: the bound on how long one keeps the engine awake.
        { id: 913, ...event, created_at: new Date(now.getTime() - 16 * MINUTE) },
      ])
      .execute();
    expect((await sleeps.workInFlight(now)).unsettledEvents).toBe(2);
    // The notifier settled 911 (skipped or delivered on every channel): it keeps nothing awake any more.
    await tdb.db.updateTable('events').set({ notified: 1 }).where('id', '=', 911).execute();
    expect((await sleeps.workInFlight(now)).unsettledEvents).toBe(1);
    await tdb.db.updateTable('events').set({ notified: 1 }).where('id', '=', 912).execute();
    expect(await sleeps.workInFlight(now)).toEqual({ tokens: 0, executions: 0, workers: 0, pendingDeliveries: 0, unsettledEvents: 0 });
  });

  it('lists the error times of instances still in error only (the monitor repository, for the reminders)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\n');
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id);
    const erred = new Date('2026-03-01T10:00:00Z');
    await tdb.db.updateTable('job_instances').set({ error_at: erred }).where('id', 'in', ids).execute();
    await tdb.db.updateTable('job_instances').set({ finished_at: erred }).where('id', '=', ids[1]!).execute();
    await tdb.db.updateTable('job_instances').set({ canceled_at: erred }).where('id', '=', ids[2]!).execute();
    expect(await new MonitorRepository(tdb.db, tdb.idGenerator).errorTimes()).toEqual([erred]);
  });
});
