/**
 * The processor's lease (db/repositories/lease-repository.ts) and the runs under it (app/lambda/processor-lease.ts),
 * on SQLite and MariaDB: every transition is one conditional UPDATE whose affected-row count decides.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runLeased, PROCESSOR_LEASE_TTL_MS } from '../../app/lambda/processor-lease';
import { STOPPED_BY, type BusyRun } from '../../app/run-while-busy';
import { LEASE_TAKE, LeaseRepository, PROCESSOR_LEASE } from '../../db/repositories/lease-repository';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const EMPTY = { committed: 0 };
type Run = BusyRun<typeof EMPTY>;
const idleRun = (committed = 1): Run => ({ committed, passes: 1, stoppedBy: STOPPED_BY.idle });

describe.each(['sqlite', 'mysql'] as const)('processor lease on %s', (dialect) => {
  let tdb: TestDatabase;
  let nowMs = Date.parse('2026-12-06T12:00:00Z');
  const clock = { now: () => new Date(nowMs) };
  let lease: LeaseRepository;
  const row = () => tdb.db.selectFrom('leases').select(['holder', 'rerun_requests']).where('name', '=', PROCESSOR_LEASE).executeTakeFirstOrThrow();

  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    lease = new LeaseRepository(tdb.db, clock);
  });
  afterAll(async () => tdb?.close());
  beforeEach(async () => {
    await tdb.db.updateTable('leases').set({ holder: null, held_until: new Date(0), rerun_requests: 0 }).execute();
  });

  it('runs again when a rerun is requested during the last pass, then frees the lease', async () => {
    const runs: number[] = [];
    const total = await runLeased(EMPTY, { lease, remainingMs: () => 60_000, marginMs: 15_000 }, async () => {
      runs.push(runs.length);
      // Another invocation arrives while the first run's last pass goes on.
      if (runs.length === 1) expect(await lease.takeOrRequest('other', PROCESSOR_LEASE_TTL_MS)).toBe(LEASE_TAKE.requested);
      return idleRun();
    });
    expect(runs).toEqual([0, 1]);
    expect(total).toMatchObject({ committed: 2, passes: 2, reruns: 1, heldElsewhere: false, stoppedBy: 'idle' });
    expect(await row()).toEqual({ holder: null, rerun_requests: 0 });
  });

  it('out of time, frees the lease and keeps the request for whoever takes it next', async () => {
    const total = await runLeased(EMPTY, { lease, remainingMs: () => 10_000, marginMs: 15_000 }, async () => {
      await lease.takeOrRequest('other', PROCESSOR_LEASE_TTL_MS);
      return idleRun();
    });
    expect(total).toMatchObject({ passes: 1, reruns: 0, stoppedBy: 'time' });
    expect(await row()).toEqual({ holder: null, rerun_requests: 1 });
    // The next invocation (a nudge, the tick) takes it at once; its passes cover the request.
    expect(await lease.takeOrRequest('next', PROCESSOR_LEASE_TTL_MS)).toBe(LEASE_TAKE.taken);
    expect(await row()).toEqual({ holder: 'next', rerun_requests: 0 });
  });

  it('renews only once half the lease is used, and stops when its lapsed lease was taken over', async () => {
    let renewals = 0;
    const counting = Object.assign(Object.create(lease) as LeaseRepository, {
      renew: (holder: string, ttl: number) => {
        renewals++;
        return lease.renew(holder, ttl);
      },
    });
    let held = true;
    const total = await runLeased(EMPTY, { lease: counting, remainingMs: () => 60_000, marginMs: 15_000, nowMs: () => nowMs }, async (guard) => {
      await guard.renewIfDue();
      expect(renewals).toBe(0);
      nowMs += PROCESSOR_LEASE_TTL_MS / 2;
      await guard.renewIfDue();
      expect([renewals, guard.held()]).toEqual([1, true]);
      // The holder stalls past its lease: another invocation takes it over.
      nowMs += PROCESSOR_LEASE_TTL_MS + 1;
      expect(await lease.takeOrRequest('successor', PROCESSOR_LEASE_TTL_MS)).toBe(LEASE_TAKE.taken);
      await guard.renewIfDue();
      held = guard.held();
      return idleRun();
    });
    expect(held).toBe(false);
    expect(total).toMatchObject({ passes: 1, reruns: 0 });
    // The successor's lease is left alone.
    expect(await row()).toEqual({ holder: 'successor', rerun_requests: 0 });
  });

  it('frees the lease when a run throws, keeping the requests', async () => {
    await expect(
      runLeased(EMPTY, { lease, remainingMs: () => 60_000, marginMs: 15_000 }, async () => {
        await lease.takeOrRequest('other', PROCESSOR_LEASE_TTL_MS);
        throw new Error('deadlock');
      }),
    ).rejects.toThrow('deadlock');
    expect(await row()).toEqual({ holder: null, rerun_requests: 1 });
  });
});
