/**
 * The agent's repositories on every dialect: claims hand out attempts, fenced writes refuse stale attempts, leases,
 * signals, memory samples and worker rows; and a real agent runs a real command end to end.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LeaseLostError } from '../../core/errors';
import { fromDbTime } from '../../db/column-codec';
import { createDatabase } from '../../db/connection';
import { ExecutionQueueRepository } from '../../db/repositories/execution-queue-repository';
import { WorkerRepository } from '../../db/repositories/worker-repository';
import { waitFor } from '../helpers/wait-for';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';
import { executionRow, queueExecutions, testAgent } from './agent-fixtures';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const LEASE_MS = 60_000;

describeEachDialect('agent repositories', (dialect) => {
  let tdb: TestDatabase;
  let queue: ExecutionQueueRepository;
  let workers: WorkerRepository;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    queue = new ExecutionQueueRepository(tdb, tdb.idGenerator);
    workers = new WorkerRepository(tdb.db, tdb.idGenerator);
  });
  afterAll(async () => {
    await tdb?.close();
  });

  const claim = (queues: string[], limit: number, workerId = 77, now = T0) =>
    queue.claim({ workerId, hostname: 'host-a', queues, limit, leaseMs: LEASE_MS, now });

  it('claims the oldest unclaimed executions of its queues once, with attempt 1 and a lease', async () => {
    await queueExecutions(tdb.db, [
      { id: 1001, shell: 'echo 1', queue: 'q1', env: { A: 'ä' } },
      { id: 1002, shell: 'echo 2', queue: 'q1' },
      { id: 1003, shell: 'echo 3', queue: 'q2' },
      { id: 1004, shell: 'echo 4', queue: 'other' },
    ]);
    const first = await claim(['q1', 'q2'], 2);
    expect(first.map((e) => [e.id, e.attempt, e.workerId, e.hostname])).toEqual([
      [1001, 1, 77, 'host-a'],
      [1002, 1, 77, 'host-a'],
    ]);
    expect(first[0]?.env).toEqual({ A: 'ä' });
    expect(first[0]?.leaseExpiresAt).toEqual(new Date(T0.getTime() + LEASE_MS));
    expect(first[0]?.claimedAt).toEqual(T0);
    const second = await claim(['q1', 'q2'], 5);
    expect(second.map((e) => e.id)).toEqual([1003]);
    expect(await claim(['q1', 'q2'], 5)).toEqual([]);
    expect(await claim([], 5)).toEqual([]);
    expect(await claim(['other'], 0)).toEqual([]);
  });

  it('returns the claimed rows as they now are, without reading them again where responses are unbounded', async () => {
    const selects: string[] = [];
    const counted = createDatabase(tdb.url, { log: (event) => void (/^select/i.test(event.query.sql) && selects.push(event.query.sql)) });
    try {
      await queueExecutions(tdb.db, [
        { id: 1051, shell: 'echo a', queue: 'reread', env: { B: 'ü' } },
        { id: 1052, shell: 'echo b', queue: 'reread' },
      ]);
      const claimed = await new ExecutionQueueRepository(counted, tdb.idGenerator).claim({ workerId: 81, hostname: 'host-r', queues: ['reread'], limit: 5, leaseMs: LEASE_MS, now: T0 });
      expect(claimed).toEqual(await queue.executionsById([1051, 1052]).then((rows) => rows.sort((a, b) => a.id - b.id)));
      expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([
        [1051, 1, 81],
        [1052, 1, 81],
      ]);
      // One read: the locked read (SQLite), or the read of the rows the UPDATE claimed (MySQL dialects).
      expect(selects).toHaveLength(1);
    } finally {
      await counted.close();
    }
  });

  it('claims in one UPDATE and one read, without a transaction, where UPDATE ... LIMIT works (issue 18)', async () => {
    // SQLite has no UPDATE ... LIMIT (without a compile option): it claims in a transaction.
    if (dialect === 'sqlite') return;
    const statements: string[] = [];
    const counted = createDatabase(tdb.url, { log: (event) => void statements.push(event.query.sql) });
    try {
      await queueExecutions(tdb.db, [
        { id: 1071, shell: 'echo 1', queue: 'one-update' },
        { id: 1072, shell: 'echo 2', queue: 'one-update' },
        { id: 1073, shell: 'echo 3', queue: 'one-update' },
      ]);
      const counting = new ExecutionQueueRepository(counted, tdb.idGenerator);
      const callsBefore = tdb.dataApi?.callCount();
      const first = await counting.claim({ workerId: 83, hostname: 'host-u', queues: ['one-update'], limit: 2, leaseMs: LEASE_MS, now: T0 });
      expect(first.map((e) => [e.id, e.attempt, e.workerId, e.claimedAt])).toEqual([
        [1071, 1, 83, T0],
        [1072, 1, 83, T0],
      ]);
      expect(statements.map((text) => text.split(' ')[0]!.toLowerCase())).toEqual(['update', 'select']);
      // On the Data API: two calls, no BeginTransaction / CommitTransaction.
      if (callsBefore !== undefined) expect(tdb.dataApi!.callCount() - callsBefore).toBe(2);
      // The same worker in the same millisecond: the rows of the first claim match again and are left out.
      // Another worker (an in-process agent sharing the repository) claims in between, in the same millisecond.
      await queueExecutions(tdb.db, [{ id: 1074, shell: 'echo 4', queue: 'one-update' }]);
      const other = await counting.claim({ workerId: 84, hostname: 'host-v', queues: ['one-update'], limit: 1, leaseMs: LEASE_MS, now: T0 });
      expect(other.map((e) => e.id)).toEqual([1073]);
      const second = await counting.claim({ workerId: 83, hostname: 'host-u', queues: ['one-update'], limit: 2, leaseMs: LEASE_MS, now: T0 });
      expect(second.map((e) => e.id)).toEqual([1074]);
      // Nothing waits: one UPDATE that changes nothing, no read.
      statements.length = 0;
      expect(await counting.claim({ workerId: 83, hostname: 'host-u', queues: ['one-update'], limit: 2, leaseMs: LEASE_MS, now: T0 })).toEqual([]);
      expect(statements).toHaveLength(1);
    } finally {
      await counted.close();
    }
  });

  it('claims without a SET TRANSACTION round trip on a pool whose sessions run READ COMMITTED (issue 18)', async () => {
    const statements: string[] = [];
    const counted = createDatabase(tdb.url, { readCommitted: true, log: (event) => void statements.push(event.query.sql) });
    try {
      await queueExecutions(tdb.db, [{ id: 1061, shell: 'echo rc', queue: 'session-rc' }]);
      const claimed = await new ExecutionQueueRepository(counted, tdb.idGenerator).claim({ workerId: 82, hostname: 'host-rc', queues: ['session-rc'], limit: 5, leaseMs: LEASE_MS, now: T0 });
      expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([[1061, 1, 82]]);
      expect(statements.filter((sql) => /^set /i.test(sql))).toEqual([]);
      if (dialect === 'mysql') {
        // The session really is READ COMMITTED (MariaDB names the variable tx_isolation, MySQL 8 transaction_isolation).
        const { rows } = await sql<{ level: string }>`select @@session.tx_isolation as level`.execute(counted.db).catch(() => sql<{ level: string }>`select @@session.transaction_isolation as level`.execute(counted.db));
        expect(rows[0]?.level).toBe('READ-COMMITTED');
      }
    } finally {
      await counted.close();
    }
  });

  it('does not re-claim an execution whose lease expired (the monitor decides, D10)', async () => {
    await queueExecutions(tdb.db, [{ id: 1101, shell: 'true', queue: 'lease' }]);
    const [claimed] = await claim(['lease'], 1);
    expect(claimed?.attempt).toBe(1);
    const muchLater = new Date(T0.getTime() + 10 * LEASE_MS);
    expect(await claim(['lease'], 1, 78, muchLater)).toEqual([]);
  });

  it('fences every write on the attempt: a stale attempt changes nothing and gets LeaseLostError', async () => {
    await queueExecutions(tdb.db, [{ id: 1201, shell: 'true', queue: 'fence' }]);
    const [claimed] = await claim(['fence'], 1);
    if (!claimed) throw new Error('nothing claimed');
    // Another claim of the same execution, as a manual re-queue would produce: attempt 2 owns it now.
    await tdb.db.updateTable('executions').set({ attempt: 2, worker_id: 99 }).where('id', '=', 1201).execute();
    const before = await executionRow(tdb.db, 1201);
    const stale = claimed.attempt;
    await expect(queue.recordStart(1201, stale, { pid: 123, startedAt: T0 })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(queue.recordOutput(1201, stale, { head: 'x', tail: '' })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(
      queue.finish(1201, stale, { exitStatus: 0, termSignal: null, finishedAt: T0, head: 'stale', tail: '' }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    expect(await executionRow(tdb.db, 1201)).toEqual(before);

    await queue.recordStart(1201, 2, { pid: 4321, startedAt: T0 });
    await queue.recordOutput(1201, 2, { head: 'héllo 🍣', tail: '' });
    // The same values again: still held, so no LeaseLostError (some drivers count such a write as 0 rows).
    await queue.recordOutput(1201, 2, { head: 'héllo 🍣', tail: '' });
    await queue.finish(1201, 2, { exitStatus: 255, termSignal: null, finishedAt: T0, head: 'héllo 🍣\n', tail: '' });
    // Finished: even the owning attempt cannot write again.
    await expect(
      queue.finish(1201, 2, { exitStatus: 0, termSignal: null, finishedAt: T0, head: '', tail: '' }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    const after = await executionRow(tdb.db, 1201);
    expect([after.pid, after.exitStatus, after.outputHead, after.finishedAt]).toEqual([4321, 255, 'héllo 🍣\n', T0]);
  });

  it('records several starts and finishes in one statement each, each fenced on its own attempt (issue 18)', async () => {
    await queueExecutions(tdb.db, [
      { id: 1251, shell: 'true', queue: 'many' },
      { id: 1252, shell: 'true', queue: 'many' },
      { id: 1253, shell: 'true', queue: 'many' },
    ]);
    const claimed = await claim(['many'], 3, 79);
    expect(claimed.map((e) => e.attempt)).toEqual([1, 1, 1]);
    // 1252 now belongs to attempt 2 (a manual re-queue and another claim): its attempt-1 reports must change nothing.
    await tdb.db.updateTable('executions').set({ attempt: 2, worker_id: 99 }).where('id', '=', 1252).execute();
    const staleRow = await executionRow(tdb.db, 1252);
    const T1 = new Date(T0.getTime() + 1_000);
    const statements: string[] = [];
    const counted = createDatabase(tdb.url, { log: (event) => void statements.push(event.query.sql) });
    try {
      const batch = new ExecutionQueueRepository(counted, tdb.idGenerator);
      const lostStarts = await batch.recordStarts([
        { id: 1251, attempt: 1, pid: 501, startedAt: T0 },
        { id: 1252, attempt: 1, pid: 502, startedAt: T0 },
        { id: 1253, attempt: 1, pid: 503, startedAt: T1 },
      ]);
      expect(lostStarts).toEqual([{ id: 1252, attempt: 1 }]);
      expect(statements.filter((text) => /^update/i.test(text))).toHaveLength(1);
      const lostFinishes = await batch.finishMany([
        { id: 1251, attempt: 1, finish: { exitStatus: 0, termSignal: null, finishedAt: T1, head: 'one ü', tail: '' } },
        { id: 1252, attempt: 1, finish: { exitStatus: 0, termSignal: null, finishedAt: T1, head: 'stale', tail: '' } },
        { id: 1253, attempt: 1, finish: { exitStatus: null, termSignal: 'SIGKILL', finishedAt: T1, head: 'three', tail: 'tail', startedAt: T0, pid: 603 } },
      ]);
      expect(lostFinishes).toEqual([{ id: 1252, attempt: 1 }]);
      expect(statements.filter((text) => /^update/i.test(text))).toHaveLength(2);
      // All still held: one statement, no read.
      statements.length = 0;
      await tdb.db.updateTable('executions').set({ finished_at: null }).where('id', 'in', [1251, 1253]).execute();
      expect(await batch.recordStarts([
        { id: 1251, attempt: 1, pid: 501, startedAt: T0 },
        { id: 1253, attempt: 1, pid: 603, startedAt: T0 },
      ])).toEqual([]);
      expect(statements).toHaveLength(1);
      await tdb.db.updateTable('executions').set({ finished_at: T1 }).where('id', 'in', [1251, 1253]).execute();
    } finally {
      await counted.close();
    }
    const [one, two, three] = await Promise.all([1251, 1252, 1253].map((id) => executionRow(tdb.db, id)));
    expect([one!.pid, one!.startedAt, one!.exitStatus, one!.termSignal, one!.outputHead, one!.finishedAt]).toEqual([501, T0, 0, null, 'one ü', T1]);
    expect(two).toEqual(staleRow);
    expect([three!.pid, three!.startedAt, three!.exitStatus, three!.termSignal, three!.outputHead, three!.outputTail]).toEqual([603, T0, null, 'SIGKILL', 'three', 'tail']);
  });

  it('renews the leases still held in one statement and reports which ones are gone', async () => {
    await queueExecutions(tdb.db, [
      { id: 1301, shell: 'true', queue: 'renew' },
      { id: 1302, shell: 'true', queue: 'renew' },
      { id: 1303, shell: 'true', queue: 'renew' },
    ]);
    const claimed = await claim(['renew'], 3);
    expect(claimed).toHaveLength(3);
    await queue.finish(1302, 1, { exitStatus: 0, termSignal: null, finishedAt: T0, head: '', tail: '' });
    const until = new Date(T0.getTime() + 5 * LEASE_MS);
    const held = await queue.renewLeases(77, [
      { id: 1301, attempt: 1 },
      { id: 1302, attempt: 1 },
      { id: 1303, attempt: 2 },
    ], until);
    expect(held).toEqual([{ id: 1301, attempt: 1 }]);
    expect((await executionRow(tdb.db, 1301)).leaseExpiresAt).toEqual(until);
    expect((await executionRow(tdb.db, 1303)).leaseExpiresAt).toEqual(new Date(T0.getTime() + LEASE_MS));
    expect(await queue.renewLeases(77, [], until)).toEqual([]);
  });

  it('lists undelivered signals of given executions and records a delivery once', async () => {
    const signal = (id: number, executionId: number, deliveredAt: Date | null) => ({
      id,
      execution_id: executionId,
      attempt: 1,
      signal: 'SIGTERM',
      reason: 'test',
      requested_at: T0,
      delivered_at: deliveredAt,
      result: null,
    });
    await tdb.db.insertInto('process_signals').values([signal(1401, 1301, null), signal(1402, 1301, T0), signal(1403, 9999, null)]).execute();
    const pending = await queue.pendingSignals([1301, 1303]);
    expect(pending).toEqual([{ id: 1401, executionId: 1301, attempt: 1, signal: 'SIGTERM', reason: 'test', requestedAt: T0 }]);
    await queue.recordSignalDelivery(1401, { deliveredAt: T0, result: 'killed' });
    await queue.recordSignalDelivery(1401, { deliveredAt: new Date(T0.getTime() + 1), result: 'again' });
    const row = await tdb.db.selectFrom('process_signals').selectAll().where('id', '=', 1401).executeTakeFirstOrThrow();
    expect([row.result, fromDbTime(row.delivered_at ?? '')]).toEqual(['killed', T0]);
    expect(await queue.pendingSignals([1301])).toEqual([]);
    expect(await queue.pendingSignals([])).toEqual([]);
  });

  it('stores memory samples', async () => {
    await queue.recordMemorySample({ executionId: 1301, instanceId: 5, definitionId: 6, rssKb: 12_345, sampledAt: T0 });
    const rows = await tdb.db.selectFrom('memory_samples').selectAll().where('execution_id', '=', 1301).execute();
    expect(rows.map((r) => [Number(r.rss_kb), Number(r.job_instance_id), Number(r.job_definition_id)])).toEqual([[12_345, 5, 6]]);
  });

  it('heart-beats in one statement while the flags are as the agent last read them, and reads them when they changed', async () => {
    const statements: string[] = [];
    const counted = createDatabase(tdb.url, { log: (event) => void statements.push(event.query.sql) });
    try {
      const beating = new WorkerRepository(counted.db, tdb.idGenerator);
      const id = await workers.register({ hostname: 'beats', queues: ['q1'], slots: 1, now: T0 });
      const seen = { suspended: false, draining: false };
      const at = new Date(T0.getTime() + 5_000);
      statements.length = 0;
      expect(await beating.heartbeat(id, { now: at, pids: { 7: 70 } }, seen)).toEqual(seen);
      expect(statements).toHaveLength(1);
      // An operator suspends the worker: the next beat's conditional write misses, and the flags are read.
      await tdb.db.updateTable('workers').set({ suspended: true }).where('id', '=', id).execute();
      statements.length = 0;
      expect(await beating.heartbeat(id, { now: new Date(at.getTime() + 5_000), pids: {} }, seen)).toEqual({ suspended: true, draining: false });
      const row = await tdb.db.selectFrom('workers').select(['heartbeat_at', 'pids']).where('id', '=', id).executeTakeFirstOrThrow();
      expect([fromDbTime(row.heartbeat_at), row.pids]).toEqual([new Date(at.getTime() + 5_000), '{}']);
      await workers.deregister(id);
      expect(await beating.heartbeat(id, { now: at, pids: {} }, seen)).toBeUndefined();
    } finally {
      await counted.close();
    }
  });

  it('registers a worker per process, heart-beats its pids, reads its flags and deregisters it', async () => {
    const a = await workers.register({ hostname: 'h', queues: ['q1', '@default'], slots: 3, now: T0 });
    const b = await workers.register({ hostname: 'h', queues: ['q1'], slots: 1, now: T0 });
    expect(a).not.toBe(b);
    const later = new Date(T0.getTime() + 5_000);
    expect(await workers.heartbeat(a, { now: later, pids: { 1301: 4242 } })).toEqual({ suspended: false, draining: false });
    await tdb.db.updateTable('workers').set({ suspended: true }).where('id', '=', a).execute();
    expect(await workers.heartbeat(a, { now: later, pids: {}, draining: true })).toEqual({ suspended: true, draining: true });
    const row = await tdb.db.selectFrom('workers').selectAll().where('id', '=', a).executeTakeFirstOrThrow();
    expect([JSON.parse(row.queues), row.pids, fromDbTime(row.heartbeat_at)]).toEqual([['q1', '@default'], '{}', later]);
    await workers.deregister(a);
    expect(await workers.heartbeat(a, { now: later, pids: {} })).toBeUndefined();
    expect(await tdb.db.selectFrom('workers').select('id').where('id', '=', b).executeTakeFirst()).toBeDefined();
  });

  it('runs a real command end to end through an agent on its own handle', async () => {
    await queueExecutions(tdb.db, [
      { id: 1501, shell: 'echo "run $KUROKO2_JOB_INSTANCE_ID ✓"; exit 3', queue: 'e2e', env: { KUROKO2_JOB_INSTANCE_ID: '808' } },
    ]);
    const handle = tdb.openAnother();
    const finished: number[] = [];
    const t = testAgent(handle, { queues: ['e2e'], ids: tdb.idGenerator, onExecutionFinished: (id) => finished.push(id) });
    try {
      await t.agent.start();
      const row = await waitFor(async () => {
        const e = await executionRow(tdb.db, 1501);
        return e.finishedAt ? e : undefined;
      }, { timeoutMs: 15_000, description: 'the finish' });
      expect([row.attempt, row.exitStatus, row.termSignal, row.outputHead, row.outputTail]).toEqual([1, 3, null, 'run 808 ✓\n', '']);
      expect(row.pid).toBeGreaterThan(0);
      expect(row.workerId).toBe(t.agent.workerId);
      expect(await t.logSink.read(1501)).toBe('run 808 ✓\n');
      await waitFor(() => finished.includes(1501));
      await t.agent.stop();
      const workerRow = await tdb.db.selectFrom('workers').select('id').where('id', '=', t.agent.workerId ?? 0).executeTakeFirst();
      expect(workerRow).toBeUndefined();
    } finally {
      await t.dispose();
      await handle.close();
    }
  });
});

it('mysql: a claim reads as many rows with 2,000 commands of another queue in the table as with 3', async () => {
  const tdb = await createTestDatabase('mysql');
  // One connection, so the session's handler counters (rows the engine read, returned or not) are the claim's.
  const metered = createDatabase(tdb.url, { poolSize: 1, readCommitted: true });
  const handlerReads = async () =>
    (await sql<{ Value: string }>`SHOW SESSION STATUS LIKE 'Handler_read%'`.execute(metered.db)).rows.reduce((n, r) => n + Number(r.Value), 0);
  const queue = new ExecutionQueueRepository(metered, tdb.idGenerator);
  let nextId = 10_000;
  // Commands of another queue, older (lower ids) than the one to claim, half running (claimed), half waiting; and as
  // many newer ones waiting in this queue, which make an id-order scan look cheap to the optimizer.
  const readsOfClaim = async (others: number) => {
    // What the last round left waiting in `mine` is running by now.
    await tdb.db.updateTable('executions').set({ claimed_at: T0, worker_id: 5, hostname: 'host-busy', attempt: 1 }).where('queue', '=', 'mine').where('claimed_at', 'is', null).execute();
    const ids = Array.from({ length: others }, () => (nextId += 2));
    await queueExecutions(tdb.db, ids.map((id) => ({ id, shell: 'sleep 100', queue: 'busy' })));
    await tdb.db.updateTable('executions').set({ claimed_at: T0, worker_id: 5, hostname: 'host-busy', attempt: 1 }).where('id', 'in', ids.filter((_, i) => i % 2 === 0)).execute();
    const mine = (nextId += 2);
    await queueExecutions(tdb.db, [{ id: mine, shell: 'true', queue: 'mine' }]);
    await queueExecutions(tdb.db, Array.from({ length: others }, () => ({ id: (nextId += 2), shell: 'true', queue: 'mine' })));
    // No ANALYZE: the table statistics lag behind, as they do while a busy table grows.
    const before = await handlerReads();
    const claimed = await queue.claim({ workerId: 9, hostname: 'host-mine', queues: ['mine'], limit: 1, leaseMs: LEASE_MS, now: T0 });
    const read = (await handlerReads()) - before;
    expect(claimed.map((e) => e.id)).toEqual([mine]);
    return read;
  };
  try {
    const small = await readsOfClaim(3);
    const large = await readsOfClaim(2_000);
    // A scan of the primary key in id order (the plan EXPLAIN shows on a nearly empty table) would read every older
    // row of the other queue and of this one's running commands: thousands more. MariaDB 10.11 walks (queue, claimed_at).
    expect(large - small).toBeLessThan(10);
  } finally {
    await metered.close();
    await tdb.close();
  }
});
