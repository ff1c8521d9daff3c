/**
 * Failed API logins per key (`client:<name>`, `address:<ip>`) in fixed windows (migration 0005). The counts live in
 * the database because the API runs as many Lambda containers at once; an in-process count would let an attacker
 * spread guesses over them. Increments are conditional on the value read, and a lost race only loses one count.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/ports';
import { fromDbTime, fromNullableDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database, DbTime, NullableDbTime } from '../schema';

export interface LoginFailureTable {
  limit_key: string;
  failures: number;
  window_started_at: DbTime;
  blocked_until: NullableDbTime;
}

// A type alias, not an interface: `withTables` wants an index-compatible record.
type LimitTables = { login_failures: LoginFailureTable };

/** How many failures a key may have in a window before it is blocked until the window ends. */
export interface LoginLimitRule {
  maxFailures: number;
  windowMs: number;
}

/** Counts failed logins and says which keys are blocked. */
export class LoginLimitRepository {
  private readonly db: Kysely<Database & LimitTables>;

  constructor(
    root: Kysely<Database>,
    private readonly clock: Clock,
  ) {
    this.db = root.withTables<LimitTables>();
  }

  /** The latest time until which any of `keys` is blocked, or undefined when none is. One statement. */
  async blockedUntil(keys: readonly string[]): Promise<Date | undefined> {
    if (keys.length === 0) return undefined;
    const now = this.clock.now();
    const rows = await this.db.selectFrom('login_failures').select('blocked_until').where('limit_key', 'in', [...keys]).where('blocked_until', '>', now).execute();
    const times = rows.map((r) => fromNullableDbTime(r.blocked_until)).filter((t): t is Date => t !== null);
    return times.length === 0 ? undefined : new Date(Math.max(...times.map((t) => t.getTime())));
  }

  /** Counts one failure for `key`; blocks it until its window ends once it reaches the rule's maximum. */
  async recordFailure(key: string, rule: LoginLimitRule): Promise<void> {
    const now = this.clock.now();
    const row = await this.db.selectFrom('login_failures').selectAll().where('limit_key', '=', key).executeTakeFirst();
    if (!row) {
      try {
        await this.db.insertInto('login_failures').values({ limit_key: key, failures: 1, window_started_at: now, blocked_until: rule.maxFailures <= 1 ? new Date(now.getTime() + rule.windowMs) : null }).execute();
        return;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        return this.recordFailure(key, rule);
      }
    }
    const started = fromDbTime(row.window_started_at);
    const fresh = started.getTime() + rule.windowMs <= now.getTime();
    const windowStart = fresh ? now : started;
    const failures = fresh ? 1 : Number(row.failures) + 1;
    const blockedUntil = failures >= rule.maxFailures ? new Date(windowStart.getTime() + rule.windowMs) : null;
    await this.db
      .updateTable('login_failures')
      .set({ failures, window_started_at: windowStart, blocked_until: blockedUntil })
      .where('limit_key', '=', key)
      .where('failures', '=', Number(row.failures))
      .execute();
  }
}
