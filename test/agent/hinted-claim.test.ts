/**
 * The hinted claim (issue 18): a doorbell's ring names the executions it was rung for, and the claim by one UPDATE
 * tries those by id first, its UPDATE and a read of the rows at once (one round trip on the Data API instead of two).
 * A hint is never trusted: every row is checked in the database, a hint naming nothing claimable leads to the
 * ordinary claim, and two agents given the same hint claim it once. Only the claim by UPDATE uses hints (MySQL dialects).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimHints } from '../../db/repositories/execution-update-writes';
import { ExecutionQueueRepository, type ClaimRequest } from '../../db/repositories/execution-queue-repository';
import type { DataApiCall } from '../helpers/data-api-server';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/test-database';
import { executionRow, queueExecutions } from './agent-fixtures';

const T0 = new Date('2026-03-01T00:00:00.000Z');
const LEASE_MS = 60_000;
/** How long a held call waits for the other one at most (never reached when both run at once). */
const HOLD_MS = 2_000;

type Gate = (call: { operation: string; sql?: string }) => Promise<void>;

for (const dialect of selectedDialects().filter((d) => d !== 'sqlite')) {
  describe(`${dialect}: hinted claims`, () => {
    let tdb: TestDatabase;
    let queue: ExecutionQueueRepository;
    let gate: Gate | undefined;
    const served: DataApiCall[] = [];
    beforeAll(async () => {
      tdb = await createTestDatabase(dialect, { dataApi: { gate: (call) => gate?.(call) ?? Promise.resolve(), onCall: (call) => served.push(call) } });
      queue = new ExecutionQueueRepository(tdb, tdb.idGenerator);
    });
    afterAll(async () => {
      await tdb?.close();
    });

    const request = (queueName: string, workerId: number, hints: readonly number[], limit = 2, now = T0): ClaimRequest & ClaimHints => ({
      workerId,
      hostname: `host-${workerId}`,
      queues: [queueName],
      limit,
      leaseMs: LEASE_MS,
      now,
      expectWork: true,
      hints,
    });
    const claimedIds = async (ids: readonly number[]) => Promise.all(ids.map(async (id) => executionRow(tdb.db, id)));

    it('claims the hinted executions by id, with attempt 1 and the claim\'s columns, as the rows now are', async () => {
      await queueExecutions(tdb.db, [
        { id: 2001, shell: 'echo 1', queue: 'hinted', env: { A: 'ä' } },
        { id: 2002, shell: 'echo 2', queue: 'hinted' },
        { id: 2003, shell: 'echo 3', queue: 'hinted' },
      ]);
      // 2003 is not named: the hint is what is claimed, not the oldest.
      const claimed = await queue.claim(request('hinted', 91, [2002, 2001]));
      expect(claimed.map((e) => [e.id, e.attempt, e.workerId, e.hostname, e.claimedAt, e.leaseExpiresAt])).toEqual([
        [2001, 1, 91, 'host-91', T0, new Date(T0.getTime() + LEASE_MS)],
        [2002, 1, 91, 'host-91', T0, new Date(T0.getTime() + LEASE_MS)],
      ]);
      expect(claimed).toEqual(await claimedIds([2001, 2002]));
      expect((await executionRow(tdb.db, 2003)).claimedAt).toBeNull();
    });

    it('hands out at most the free slots of the hinted ones, and not a row a same-millisecond claim handed out', async () => {
      await queueExecutions(tdb.db, [
        { id: 2101, shell: 'echo 1', queue: 'twice' },
        { id: 2102, shell: 'echo 2', queue: 'twice' },
        { id: 2103, shell: 'echo 3', queue: 'twice' },
      ]);
      expect((await queue.claim(request('twice', 92, [2101, 2102], 1))).map((e) => e.id)).toEqual([2101]);
      // The same worker at the same millisecond: the hinted row it holds matches again and is left out...
      expect((await queue.claim(request('twice', 92, [2101, 2102], 2))).map((e) => [e.id, e.attempt])).toEqual([[2102, 1]]);
      // ...and so it is by the ordinary claim that follows an empty hint.
      expect((await queue.claim(request('twice', 92, [2101], 5))).map((e) => [e.id, e.attempt])).toEqual([[2103, 1]]);
    });

    it('falls back to the ordinary claim when the hint names nothing it may claim (another queue, claimed, gone)', async () => {
      await queueExecutions(tdb.db, [
        { id: 2201, shell: 'echo mine', queue: 'stale' },
        { id: 2202, shell: 'echo theirs', queue: 'elsewhere' },
        { id: 2203, shell: 'echo taken', queue: 'stale' },
      ]);
      expect((await queue.claim(request('stale', 93, [2203], 1))).map((e) => e.id)).toEqual([2203]);
      const claimed = await queue.claim(request('stale', 94, [2202, 2203, 987_654_321]));
      expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([[2201, 1, 94]]);
      expect((await executionRow(tdb.db, 2202)).claimedAt).toBeNull();
      expect(await executionRow(tdb.db, 2203)).toMatchObject({ workerId: 93, attempt: 1 });
    });

    it('tells its rows from another claim\'s when the read shows one it cannot place', async () => {
      await queueExecutions(tdb.db, [
        { id: 2301, shell: 'echo 1', queue: 'mixed' },
        { id: 2302, shell: 'echo 2', queue: 'mixed' },
      ]);
      await queue.claim(request('mixed', 95, [2301], 1));
      // 2301 reads claimed by another worker and unstarted: its claim could have been given back; the rows are read again.
      const claimed = await queue.claim(request('mixed', 96, [2301, 2302]));
      expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([[2302, 1, 96]]);
      expect(claimed).toEqual(await claimedIds([2302]));
    });

    it('two agents given the same hint at once claim it once; the other gets the ordinary claim\'s', async () => {
      for (let round = 0; round < 5; round++) {
        const [a, b] = [2401 + round * 2, 2402 + round * 2];
        await queueExecutions(tdb.db, [
          { id: a, shell: 'echo a', queue: `race-${round}` },
          { id: b, shell: 'echo b', queue: `race-${round}` },
        ]);
        const [first, second] = await Promise.all([queue.claim(request(`race-${round}`, 97, [a], 1)), queue.claim(request(`race-${round}`, 98, [a], 1))]);
        const all = [...first, ...second];
        expect(all.map((e) => e.id).sort()).toEqual([a, b]);
        expect(all.map((e) => e.attempt)).toEqual([1, 1]);
        expect(new Set(all.map((e) => e.workerId))).toEqual(new Set([97, 98]));
        for (const execution of all) expect(await executionRow(tdb.db, execution.id)).toMatchObject({ workerId: execution.workerId, attempt: 1 });
      }
    });

    if (dialect !== 'data-api') return;

    /** Holds every call matching `held` until one matching `awaited` arrived (or HOLD_MS passed: then `waitedInVain`). */
    const holding = (held: RegExp, awaited: RegExp, after: 'arrival' | 'answer') => {
      let arrived!: () => void;
      const other = new Promise<void>((resolve) => (arrived = resolve));
      const state = { waitedInVain: false };
      const seen = served.length;
      gate = async (call) => {
        if (after === 'arrival' && awaited.test(call.sql ?? '')) arrived();
        if (held.test(call.sql ?? '')) await Promise.race([other, new Promise((resolve) => setTimeout(resolve, HOLD_MS)).then(() => (state.waitedInVain = true))]);
      };
      const watch = setInterval(() => {
        if (after === 'answer' && served.slice(seen).some((call) => awaited.test(call.sql ?? ''))) arrived();
      }, 1);
      return { state, done: () => ((gate = undefined), clearInterval(watch)) };
    };
    const UPDATE = /^update `executions`/;
    const READ = /^select .* from `executions` where `id` in/;

    it('makes one round trip on the Data API: its UPDATE and its read at once, nothing after, whichever lands first', async () => {
      await queueExecutions(tdb.db, [
        { id: 2501, shell: 'echo 1', queue: 'one-round' },
        { id: 2502, shell: 'echo 2', queue: 'one-round' },
      ]);
      for (const [held, awaited, after, id, worker] of [
        // The UPDATE waits for the read to arrive: the read sees the row unclaimed.
        [UPDATE, READ, 'arrival', 2501, 71],
        // The read waits for the UPDATE's answer: it sees the row claimed by this claim.
        [READ, UPDATE, 'answer', 2502, 72],
      ] as const) {
        const hold = holding(held, awaited, after);
        const before = tdb.dataApi!.callCount();
        let claimed;
        try {
          claimed = await queue.claim(request('one-round', worker, [id]));
        } finally {
          hold.done();
        }
        expect(hold.state.waitedInVain).toBe(false);
        expect(tdb.dataApi!.callCount() - before).toBe(2);
        expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([[id, 1, worker]]);
        expect(claimed).toEqual(await claimedIds([id]));
      }
    });

    it('reads its rows again when one it read claimed by another was given back and claimed by its UPDATE after the read', async () => {
      await queueExecutions(tdb.db, [
        { id: 2601, shell: 'echo given back', queue: 'given-back' },
        { id: 2602, shell: 'echo taken meanwhile', queue: 'given-back' },
      ]);
      expect((await queue.claim(request('given-back', 73, [2601], 1))).map((e) => e.id)).toEqual([2601]);
      // The hinted UPDATE waits until its read has answered; meanwhile worker 73 gives its claim back (a claim whose
      // answer was lost) and worker 74 claims the row the read saw unclaimed. As many candidates as rows changed, but
      // not the same rows: taking the one read unclaimed would run it twice under one attempt.
      let readAnswered!: () => void;
      const answered = new Promise<void>((resolve) => (readAnswered = resolve));
      let proceed!: () => void;
      const meanwhileDone = new Promise<void>((resolve) => (proceed = resolve));
      const seen = served.length;
      const watch = setInterval(() => served.slice(seen).some((call) => READ.test(call.sql ?? '')) && readAnswered(), 1);
      gate = async (call) => {
        if (/^update `executions`.*`id` in \(/.test(call.sql ?? '')) await meanwhileDone;
      };
      try {
        const claiming = queue.claim(request('given-back', 75, [2601, 2602]));
        await answered;
        expect(await queue.releaseClaims([73], [{ id: 2601, attempt: 1 }])).toBe(1);
        await tdb.db.updateTable('executions').set({ claimed_at: T0, worker_id: 74, hostname: 'host-74', attempt: 1 }).where('id', '=', 2602).execute();
        proceed();
        const claimed = await claiming;
        expect(claimed.map((e) => [e.id, e.attempt, e.workerId])).toEqual([[2601, 2, 75]]);
        expect(claimed).toEqual(await claimedIds([2601]));
      } finally {
        gate = undefined;
        clearInterval(watch);
      }
    });
  });
}
