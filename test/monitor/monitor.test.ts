import type { Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runMonitorPass, type MonitorPassResult, type MonitorSettings } from '../../core/services/monitor-service';
import { createIdGenerator } from '../../db/id-generator';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import type { Database } from '../../db/schema';
import type { EngineServices } from '../../app/engine-services';
import { eventTypes, insertDefinition, logMessages, runUntilIdle, servicesFor, statusOf } from '../helpers/engine-fixtures';
import { FakeClock } from '../helpers/in-memory-store';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const SECOND = 1_000;
const DAY = 24 * 60 * 60 * SECOND;
const MB = 1_024;

async function insertWorker(db: Kysely<Database>, id: number, at: Date, pids: Record<string, number>, options: { draining?: boolean } = {}) {
  await db
    .insertInto('workers')
    .values({
      id,
      hostname: `host-${id}`,
      queues: JSON.stringify(['@default']),
      slots: 2,
      pids: JSON.stringify(pids),
      heartbeat_at: at,
      started_at: at,
      suspended: false,
      draining: options.draining ?? false,
      version: 0,
    })
    .execute();
}

async function heartbeat(db: Kysely<Database>, id: number, at: Date, pids: Record<string, number>) {
  await db.updateTable('workers').set({ heartbeat_at: at, pids: JSON.stringify(pids) }).where('id', '=', id).execute();
}

async function alertRows(db: Kysely<Database>) {
  return db.selectFrom('alerts').select(['kind', 'subject']).where('kind', '!=', 'process_absence_seen').orderBy('kind').orderBy('subject').execute();
}

describeEachDialect('monitor', (dialect) => {
  let tdb: TestDatabase;
  let clock: FakeClock;
  let services: EngineServices;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
    clock = new FakeClock(new Date('2026-02-01T00:00:00.000Z'));
    services = servicesFor(tdb, { clock });
  });
  afterEach(async () => {
    await tdb.close();
  });

  const monitor = (settings: Partial<MonitorSettings> = {}): Promise<MonitorPassResult> =>
    runMonitorPass({ store: new MonitorRepository(tdb.db, tdb.idGenerator), clock, ids: tdb.idGenerator, settings });

  /** Launches a one-command job and steps it until its execution is queued; answers the instance and execution ids. */
  async function queuedExecution(definitionId = 1): Promise<{ instanceId: number; executionId: number }> {
    await insertDefinition(tdb.db, definitionId, 'execute: long_task\n', { name: `Job ${definitionId}` });
    const { instance } = await services.operations.launch({ definitionId, launchedBy: 'test' });
    for (let i = 0; i < 5; i++) await services.processorPass();
    const row = await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance.id).executeTakeFirstOrThrow();
    return { instanceId: instance.id, executionId: Number(row.id) };
  }

  /** Plays an agent that claimed the execution and started its process. */
  async function claim(executionId: number, workerId: number, pid: number | null = 4242) {
    const now = clock.now();
    await tdb.db
      .updateTable('executions')
      .set({ attempt: 1, claimed_at: now, worker_id: workerId, hostname: `host-${workerId}`, lease_expires_at: new Date(now.getTime() + 60 * SECOND), pid, started_at: pid === null ? null : now })
      .where('id', '=', executionId)
      .execute();
  }

  it('raises not_assigned once for an execution nobody claims, after the assignment delay', async () => {
    const { instanceId } = await queuedExecution();
    clock.advance(299 * SECOND);
    expect((await monitor()).raised.not_assigned).toBe(0);
    clock.advance(2 * SECOND);
    expect((await monitor()).raised.not_assigned).toBe(1);
    clock.advance(600 * SECOND);
    expect((await monitor()).raised.not_assigned).toBe(0);
    expect(await alertRows(tdb.db)).toHaveLength(1);
    expect((await eventTypes(tdb.db, instanceId)).filter((t) => t === 'not_assigned')).toHaveLength(1);
    const log = (await logMessages(tdb.db, instanceId)).find((m) => m.includes('not assigned'));
    expect(log).toMatch(/^\(execution [\w-]+\) Deliver notification mail: process is not assigned to any job-executor\. No worker of queue '@default' claimed it within 300 s\.$/);
    expect(await statusOf(tdb.db, instanceId)).toBe('working');
  });

  it('raises not_assigned once for a claimed execution that has no pid after a minute', async () => {
    const { instanceId, executionId } = await queuedExecution();
    await insertWorker(tdb.db, 50, clock.now(), {});
    await claim(executionId, 50, null);
    clock.advance(59 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.not_assigned).toBe(0);
    clock.advance(2 * SECOND);
    expect((await monitor()).raised.not_assigned).toBe(1);
    expect((await monitor()).raised.not_assigned).toBe(0);
    expect(await alertRows(tdb.db)).toEqual([{ kind: 'not_assigned', subject: `execution:${executionId}:1` }]);
    expect((await logMessages(tdb.db, instanceId)).some((m) => m.includes('host-50 claimed it at'))).toBe(true);
  });

  it('finishes an execution missing from its live worker heartbeat as lost, once, and the processor fails its token', async () => {
    const { instanceId, executionId } = await queuedExecution();
    await insertWorker(tdb.db, 50, clock.now(), { [executionId]: 4242 });
    await claim(executionId, 50);
    expect((await monitor()).raised.process_absence).toBe(0);

    // The agent stops listing it; the first pass only notes the time, the threshold counts from there.
    clock.advance(5 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.process_absence).toBe(0);
    clock.advance(29 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.process_absence).toBe(0);
    clock.advance(2 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    const result = await monitor();
    expect(result.raised.process_absence).toBe(1);
    expect(result.lostExecutions).toBe(1);

    const execution = await tdb.db.selectFrom('executions').selectAll().where('id', '=', executionId).executeTakeFirstOrThrow();
    expect(execution.finished_at).not.toBeNull();
    expect(execution.exit_status).toBeNull();
    expect(execution.lost_reason).toBe('process absent: PID 4242 is no longer reported by host-50 (id 50)');
    expect(await alertRows(tdb.db)).toEqual([{ kind: 'process_absence', subject: `execution:${executionId}:1` }]);
    const logs = await logMessages(tdb.db, instanceId);
    expect(logs.some((m) => /^\(execution [\w-]+\) Deliver notification mail: PID 4242 is not running\. host-50 \(id 50\) has not reported it for 31 s/.test(m))).toBe(true);

    clock.advance(60 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised).toMatchObject({ process_absence: 0, worker_lost: 0, not_assigned: 0 });

    await services.processorPass();
    const token = await tdb.db.selectFrom('tokens').select('status').where('job_instance_id', '=', instanceId).executeTakeFirstOrThrow();
    expect(token.status).toBe('failure');
    expect(await statusOf(tdb.db, instanceId)).toBe('error');
    expect(await eventTypes(tdb.db, instanceId)).toEqual(['launch', 'process_absence', 'failure']);
    expect((await logMessages(tdb.db, instanceId)).some((m) => m.includes('`long_task` was lost: process absent'))).toBe(true);
    expect(await tdb.db.selectFrom('alerts').select('subject').where('kind', '=', 'process_absence_seen').execute()).toEqual([]);
  });

  it('leaves a listed execution alone, and restarts the absence clock when a listing reappears', async () => {
    const { executionId } = await queuedExecution();
    await insertWorker(tdb.db, 50, clock.now(), { [executionId]: 4242 });
    await claim(executionId, 50);
    clock.advance(3_600 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), { [executionId]: 4242 });
    expect((await monitor()).raised.process_absence).toBe(0);

    await heartbeat(tdb.db, 50, clock.now(), {});
    await monitor();
    clock.advance(20 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), { [executionId]: 4242 });
    await monitor();
    clock.advance(20 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.process_absence).toBe(0);
    clock.advance(20 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.process_absence).toBe(0);
    clock.advance(15 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    expect((await monitor()).raised.process_absence).toBe(1);
  });

  it('does not call a command absent before its worker heart-beat once since claiming it', async () => {
    const { executionId } = await queuedExecution();
    await insertWorker(tdb.db, 50, clock.now(), {});
    clock.advance(SECOND);
    await claim(executionId, 50);
    // The worker's last heartbeat (no pids) predates the claim: it has not had a chance to list the command.
    for (let i = 0; i < 5; i++) {
      clock.advance(20 * SECOND);
      expect((await monitor({ workerLostMs: 3_600 * SECOND })).raised.process_absence).toBe(0);
    }
    expect(await tdb.db.selectFrom('alerts').select('subject').where('kind', '=', 'process_absence_seen').execute()).toEqual([]);
  });

  it('raises nothing when the agent finished the execution before the monitor could', async () => {
    const { executionId } = await queuedExecution();
    await insertWorker(tdb.db, 50, clock.now(), {});
    await claim(executionId, 50);
    await monitor();
    clock.advance(40 * SECOND);
    await heartbeat(tdb.db, 50, clock.now(), {});
    // The agent's finish lands after the monitor read the running executions: the fenced write wins nothing.
    const repository = new MonitorRepository(tdb.db, tdb.idGenerator);
    const racing = Object.assign(Object.create(repository) as MonitorRepository, {
      findRunningExecutions: async () => {
        const running = await repository.findRunningExecutions();
        await tdb.db.updateTable('executions').set({ finished_at: clock.now(), exit_status: 0 }).where('id', '=', executionId).execute();
        return running;
      },
    });
    const result = await runMonitorPass({ store: racing, clock, ids: tdb.idGenerator });
    expect(result.raised.process_absence).toBe(0);
    expect(await alertRows(tdb.db)).toEqual([]);
    const execution = await tdb.db.selectFrom('executions').select(['exit_status', 'lost_reason']).where('id', '=', executionId).executeTakeFirstOrThrow();
    expect(execution).toEqual({ exit_status: 0, lost_reason: null });
  });

  it('raises worker_lost once for a worker whose heartbeat stopped and finishes its executions as lost', async () => {
    const first = await queuedExecution(1);
    const second = await queuedExecution(2);
    await insertWorker(tdb.db, 60, clock.now(), { [first.executionId]: 4242, [second.executionId]: 4343 });
    await claim(first.executionId, 60);
    await claim(second.executionId, 60, 4343);
    await insertWorker(tdb.db, 61, clock.now(), {}, { draining: true });
    clock.advance(119 * SECOND);
    expect((await monitor()).raised.worker_lost).toBe(0);
    clock.advance(2 * SECOND);
    const result = await monitor();
    expect(result.raised.worker_lost).toBe(1);
    expect(result.lostExecutions).toBe(2);
    expect(result.raised.process_absence).toBe(0);
    expect((await monitor()).raised.worker_lost).toBe(0);
    expect(await alertRows(tdb.db)).toEqual([{ kind: 'worker_lost', subject: `worker:60:${new Date('2026-02-01T00:00:00.000Z').getTime()}:${new Date('2026-02-01T00:00:00.000Z').getTime()}` }]);

    const lost = await tdb.db.selectFrom('executions').select(['lost_reason', 'exit_status']).orderBy('id').execute();
    expect(lost.map((e) => e.lost_reason)).toEqual([
      'worker lost: host-60 (id 60) stopped heart-beating at 2026-02-01T00:00:00.000Z',
      'worker lost: host-60 (id 60) stopped heart-beating at 2026-02-01T00:00:00.000Z',
    ]);
    await runUntilIdle(services);
    for (const { instanceId } of [first, second]) {
      expect(await statusOf(tdb.db, instanceId)).toBe('error');
      expect(await eventTypes(tdb.db, instanceId)).toEqual(['launch', 'worker_lost', 'failure']);
    }
  });

  it('handles a worker lost a second time: after it resumed and claimed new work, its new executions are finished as lost too', async () => {
    const first = await queuedExecution(1);
    await insertWorker(tdb.db, 62, clock.now(), { [first.executionId]: 4242 });
    await claim(first.executionId, 62);
    clock.advance(121 * SECOND);
    expect((await monitor()).lostExecutions).toBe(1);
    // The host comes back: the same worker row heart-beats again and claims new work, then dies for good.
    const second = await queuedExecution(2);
    await heartbeat(tdb.db, 62, clock.now(), { [second.executionId]: 4343 });
    await claim(second.executionId, 62, 4343);
    clock.advance(60 * SECOND);
    expect((await monitor()).raised.worker_lost).toBe(0);
    clock.advance(61 * SECOND);
    const result = await monitor();
    expect(result.raised.worker_lost).toBe(1);
    expect(result.lostExecutions).toBe(1);
    expect((await monitor()).raised.worker_lost).toBe(0);
    const row = await tdb.db.selectFrom('executions').select(['finished_at', 'lost_reason']).where('id', '=', second.executionId).executeTakeFirstOrThrow();
    expect(row.finished_at).not.toBeNull();
    expect(row.lost_reason).toMatch(/^worker lost: host-62 \(id 62\)/);
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, second.instanceId)).toBe('error');
  });

  it('raises worker_lost without an instance for a stale worker holding nothing', async () => {
    await insertWorker(tdb.db, 70, clock.now(), {});
    clock.advance(200 * SECOND);
    expect((await monitor()).raised.worker_lost).toBe(1);
    const events = await tdb.db.selectFrom('events').select(['type', 'job_instance_id', 'message']).execute();
    expect(events).toEqual([
      { type: 'worker_lost', job_instance_id: null, message: 'Worker host-70 (id 70) stopped heart-beating: last heartbeat at 2026-02-01T00:00:00.000Z, 200 s ago.' },
    ]);
  });

  it('reminds of an instance still in error once a day', async () => {
    await insertDefinition(tdb.db, 1, 'execute: broken\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await runUntilIdle(services, () => 1);
    expect(await statusOf(tdb.db, instance.id)).toBe('error');
    clock.advance(DAY - SECOND);
    expect((await monitor()).raised.remind_failure).toBe(0);
    clock.advance(2 * SECOND);
    expect((await monitor()).raised.remind_failure).toBe(1);
    clock.advance(3_600 * SECOND);
    expect((await monitor()).raised.remind_failure).toBe(0);
    clock.advance(DAY);
    expect((await monitor()).raised.remind_failure).toBe(1);
    expect((await eventTypes(tdb.db, instance.id)).filter((t) => t === 'remind_failure')).toHaveLength(2);
    expect((await logMessages(tdb.db, instance.id)).some((m) => m.includes('has been in ERROR state since'))).toBe(true);
  });

  it('raises memory_exceeded once for an instance far above its definition history', async () => {
    let id = 500;
    const sample = async (instanceId: number, definitionId: number, rssKb: number, at: Date) =>
      tdb.db.insertInto('memory_samples').values({ id: id++, execution_id: instanceId * 10, job_instance_id: instanceId, job_definition_id: definitionId, rss_kb: rssKb, sampled_at: at }).execute();
    const earlier = new Date(clock.now().getTime() - 2 * DAY);
    await sample(101, 1, 80 * MB, earlier);
    await sample(101, 1, 100 * MB, earlier);
    await sample(102, 1, 90 * MB, earlier);
    await sample(103, 1, 150 * MB, clock.now());
    await sample(104, 1, 250 * MB, clock.now());
    await sample(201, 2, 10 * MB, earlier);
    await sample(202, 2, 90 * MB, clock.now());

    const result = await monitor();
    // 103: 150 MB is not twice 100 MB; 104: 250 MB is not twice 150 MB (its history includes 103);
    // 202: 90 MB is 9x 10 MB but only 80 MB more: below the 100 MB floor.
    expect(result.raised.memory_exceeded).toBe(0);
    await sample(104, 1, 400 * MB, clock.now());
    expect((await monitor()).raised.memory_exceeded).toBe(1);
    expect((await monitor()).raised.memory_exceeded).toBe(0);
    expect(await alertRows(tdb.db)).toEqual([{ kind: 'memory_exceeded', subject: 'instance:104' }]);
    expect(await logMessages(tdb.db, 104)).toEqual([
      'Deliver notification mail: memory consumption 400.0 MB is far above the expected 150.0 MB (the largest of this job\'s other instances).',
    ]);
  });

  it('two monitors at once raise each alert once', async () => {
    const { instanceId } = await queuedExecution();
    clock.advance(400 * SECOND);
    // On SQLite the other monitor shares this process's connection: a second connection's BEGIN IMMEDIATE busy-waits
    // synchronously while the first holds the write lock, blocking the event loop the first needs to commit (two
    // processes do not share one), so the outcome hung on timing (SQLite serialises writers anyway).
    const other = dialect === 'sqlite' ? undefined : tdb.openAnother();
    const otherDb = other?.db ?? tdb.db;
    // Each process has its own id generator (a shared one would reserve blocks through the other's connection).
    const otherIds = createIdGenerator(otherDb);
    try {
      const [a, b] = await Promise.all([
        monitor(),
        runMonitorPass({ store: new MonitorRepository(otherDb, otherIds), clock, ids: otherIds }),
      ]);
      expect(a.raised.not_assigned + b.raised.not_assigned).toBe(1);
      expect((await eventTypes(tdb.db, instanceId)).filter((t) => t === 'not_assigned')).toHaveLength(1);
    } finally {
      await other?.close();
    }
  });
});
