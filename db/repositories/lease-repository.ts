/**
 * Leases (migration 0010): a pass that runs as a single runner per deployment. Every transition is one conditional
 * UPDATE on the lease's row, so two invocations can never both hold it, and the affected-row count tells each what
 * happened. Every UPDATE here changes a value of the row it matches (a new holder, a later `held_until`, a request
 * count moved), so the count means the same whether a server reports matched or changed rows.
 *
 * - take: free or lapsed -> mine until now + ttl (pending requests cleared: the passes about to run cover them);
 * - held by another and not lapsed -> one more rerun request, in the same row;
 * - release: free only while no request came (else the holder clears them and runs again: `resume`);
 * - leave: free, keeping the requests (the holder is out of time: the next invocation or tick takes over).
 *
 * The times are the invocation's clock (every Lambda's is synchronised by AWS); a lease lapses after `ttl` at worst,
 * and a lapsed lease costs one overlapping run, which the engine tolerates (claims are fenced): it is a saving, not a
 * guard of correctness.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/ports';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';

/** The processor pass's lease (seeded by migration 0010). */
export const PROCESSOR_LEASE = 'processor';

/** What an invocation got when it asked for the lease. */
export const LEASE_TAKE = {
  /** It holds the lease: run the passes. */
  taken: 'taken',
  /** Another holds it: a rerun request was counted for the holder. */
  requested: 'requested',
} as const;
export type LeaseTake = (typeof LEASE_TAKE)[keyof typeof LEASE_TAKE];

const EPOCH = new Date(0);
/** Times the lease may change hands between a failed take and a failed request before the caller gives up asking. */
const TAKE_ATTEMPTS = 4;

export class LeaseRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly name: string = PROCESSOR_LEASE,
  ) {}

  /**
   * Takes the lease for `holder`, or counts a rerun request for the one holding it. Usually one statement (the take),
   * two when held. A holder that releases between the two is taken over on the next attempt, so no request lands on a
   * free lease (nobody would see it). Returns `taken` when the row cannot be settled (the engine runs the passes
   * anyway, which is always safe).
   */
  async takeOrRequest(holder: string, ttlMs: number): Promise<LeaseTake> {
    for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      const taken = await this.db
        .updateTable('leases')
        .set({ holder, held_until: new Date(now.getTime() + ttlMs), rerun_requests: 0 })
        .where('name', '=', this.name)
        .where((eb) => eb.or([eb('holder', 'is', null), eb('held_until', '<=', now)]))
        .executeTakeFirst();
      if (updated(taken)) return LEASE_TAKE.taken;
      const requested = await this.db
        .updateTable('leases')
        .set((eb) => ({ rerun_requests: eb('rerun_requests', '+', 1) }))
        .where('name', '=', this.name)
        .where('holder', 'is not', null)
        .where('held_until', '>', now)
        .executeTakeFirst();
      if (updated(requested)) return LEASE_TAKE.requested;
      // Neither free nor held: freed in between, or the row is missing (a database migrated without its seed).
      if (attempt === 0) await this.ensureRow();
    }
    return LEASE_TAKE.taken;
  }

  /** Extends the holder's lease to now + ttl; false when it lapsed and another took it. */
  async renew(holder: string, ttlMs: number): Promise<boolean> {
    const until = new Date(this.clock.now().getTime() + ttlMs);
    return updated(await this.db.updateTable('leases').set({ held_until: until }).where('name', '=', this.name).where('holder', '=', holder).executeTakeFirst());
  }

  /** Frees the lease if no rerun was requested; false when one was (or the lease was lost). */
  async release(holder: string): Promise<boolean> {
    return updated(
      await this.db
        .updateTable('leases')
        .set({ holder: null, held_until: EPOCH })
        .where('name', '=', this.name)
        .where('holder', '=', holder)
        .where('rerun_requests', '=', 0)
        .executeTakeFirst(),
    );
  }

  /** Clears the requests (the next pass covers them) and extends the lease; false when the lease was lost. */
  async resume(holder: string, ttlMs: number): Promise<boolean> {
    const until = new Date(this.clock.now().getTime() + ttlMs);
    return updated(
      await this.db
        .updateTable('leases')
        .set({ rerun_requests: 0, held_until: until })
        .where('name', '=', this.name)
        .where('holder', '=', holder)
        .executeTakeFirst(),
    );
  }

  /** Frees the lease whatever was requested; the requests stay for whoever takes it next. */
  async leave(holder: string): Promise<void> {
    await this.db.updateTable('leases').set({ holder: null, held_until: EPOCH }).where('name', '=', this.name).where('holder', '=', holder).execute();
  }

  private async ensureRow(): Promise<void> {
    try {
      await this.db.insertInto('leases').values({ name: this.name, holder: null, held_until: EPOCH, rerun_requests: 0 }).execute();
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
}

const updated = (result: { numUpdatedRows: bigint }): boolean => Number(result.numUpdatedRows) > 0;
