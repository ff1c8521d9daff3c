/**
 * The processor as a single runner per deployment on AWS (issue 18). Every agent finish, API launch and scheduler
 * launch invokes the processor asynchronously and nothing bounds its concurrency (reserved concurrency is no safe
 * default: a new account may have a quota of 10, and AWS keeps 100 unreserved), so a busy hour ran a dozen
 * invocations at once over the same rows: deadlocks, lost races, Data API calls for nothing. A lease row
 * (db/repositories/lease-repository.ts) makes them one runner:
 *
 * - an invocation takes the lease (one UPDATE) and runs its passes, renewing the lease once half of it is used;
 * - one that finds it held counts a rerun request in the row (one UPDATE) and returns at once;
 * - the holder frees the lease only when no request came; else it clears them and runs again, so work made visible
 *   while it ran (the reason for each request) is seen by a pass that starts after the request: no nudge is lost;
 * - out of time, it frees the lease keeping the requests: the next nudge or the one-minute tick takes over;
 * - a holder that crashed leaves a lease that lapses after the TTL; the next nudge or tick takes it.
 *
 * The local runtime runs one processor loop in process and does not use this.
 */
import { randomUUID } from 'node:crypto';
import { LEASE_TAKE, type LeaseRepository } from '../../db/repositories/lease-repository';
import { addUpResults, STOPPED_BY, type BusyRun } from '../run-while-busy';

/** How long a lease holds without renewal: a crashed holder delays the work at most this long (plus a tick). */
export const PROCESSOR_LEASE_TTL_MS = 20_000;

export type LeaseStore = Pick<LeaseRepository, 'takeOrRequest' | 'renew' | 'release' | 'resume' | 'leave'>;

/** What the runs under a lease see of it. */
export interface LeaseGuard {
  /** Renews the lease when half of it is used (one UPDATE then, none before). */
  renewIfDue(): Promise<void>;
  /** False once the lease lapsed and another invocation took it: stop running passes. */
  held(): boolean;
}

export interface LeasedRunOptions {
  lease: LeaseStore;
  /** Milliseconds left to the invocation. */
  remainingMs: () => number;
  /** Left for a run and the return: no rerun starts with less. */
  marginMs: number;
  ttlMs?: number;
  /** Milliseconds now, for the renewal's timing; default Date.now. */
  nowMs?: () => number;
}

/** The runs' total, or `heldElsewhere` when another invocation holds the lease (a rerun was requested from it). */
export type LeasedRun<R> = BusyRun<R> & { reruns: number; heldElsewhere: boolean };

/** Runs `run` under the lease, again while reruns are requested and time is left. */
export async function runLeased<R extends object>(
  empty: R,
  options: LeasedRunOptions,
  run: (guard: LeaseGuard) => Promise<BusyRun<R>>,
): Promise<LeasedRun<R>> {
  const { lease, remainingMs, marginMs } = options;
  const ttlMs = options.ttlMs ?? PROCESSOR_LEASE_TTL_MS;
  const nowMs = options.nowMs ?? Date.now;
  const holder = randomUUID();
  if ((await lease.takeOrRequest(holder, ttlMs)) === LEASE_TAKE.requested) {
    return { ...empty, passes: 0, stoppedBy: STOPPED_BY.idle, reruns: 0, heldElsewhere: true };
  }
  let renewedAt = nowMs();
  let held = true;
  const guard: LeaseGuard = {
    held: () => held,
    async renewIfDue() {
      if (!held || nowMs() - renewedAt < ttlMs / 2) return;
      const at = nowMs();
      held = await lease.renew(holder, ttlMs);
      renewedAt = at;
    },
  };
  let total: BusyRun<R> = { ...empty, passes: 0, stoppedBy: STOPPED_BY.idle };
  let reruns = 0;
  try {
    for (;;) {
      total = addUpResults(total, await run(guard));
      if (!held) break;
      if (total.stoppedBy !== STOPPED_BY.idle) {
        // Work is left (and maybe requests): free the lease for the next nudge or tick, the requests kept.
        await lease.leave(holder);
        break;
      }
      if (await lease.release(holder)) break;
      // A rerun was requested while the passes ran (or the lease lapsed and was taken).
      if (remainingMs() < marginMs) {
        await lease.leave(holder);
        total = { ...total, stoppedBy: STOPPED_BY.time };
        break;
      }
      const at = nowMs();
      if (!(await lease.resume(holder, ttlMs))) break;
      renewedAt = at;
      reruns++;
    }
  } catch (error) {
    // Free the lease for the retry or the next tick rather than leave it to lapse; the requests stay.
    await lease.leave(holder).catch(() => undefined);
    throw error;
  }
  return { ...total, reruns, heldElsewhere: false };
}
