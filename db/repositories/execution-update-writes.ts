/**
 * The agent's statements that name several executions at once (issue 18), beside execution-queue-repository.ts:
 * the claim as one UPDATE where the dialect allows it, and fenced writes of several executions in one statement.
 */
import { sql, type Kysely, type Updateable } from 'kysely';
import { LeaseLostError } from '../../core/errors';
import type { Execution } from '../../core/model';
import { fromDbInt, fromDbTime } from '../column-codec';
import { isRetryableLockError } from '../db-errors';
import type { Database, ExecutionTable } from '../schema';
import type { ClaimRequest, ExecutionHold, FinishRecord } from './execution-queue-repository';
import { outputColumns, toExecution } from './row-mappers';

/** Lengths of the bounded text columns (see the initial migration). */
const TERM_SIGNAL_MAX = 32;
const LOST_REASON_MAX = 1024;
/** A claim that deadlocks (MySQL may pick it as the victim) is simply run again this many times. */
const CLAIM_LOCK_RETRIES = 3;

/** One execution's fenced write: the columns to set while (id, attempt) holds it. */
export interface FencedSet extends ExecutionHold {
  set: Updateable<ExecutionTable>;
}

/** Claims by one UPDATE (MySQL, MariaDB, Aurora MySQL), remembering the last claim to tell its rows apart. */
export class UpdateClaims {
  /**
   * Each worker's last claim: its time (ms) and ids. A later claim by the same worker at the same millisecond finds
   * these rows too (see claim) and leaves them out. Per worker: in-process agents share this repository, and another
   * worker's claim in between must not make a worker forget its own.
   */
  readonly #lastClaims = new Map<number, { at: number; ids: Set<number> }>();

  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The claim as one autocommitted `UPDATE ... ORDER BY id LIMIT n` and, when it claimed anything, one read of the
   * rows it claimed (issue 18: 2 statements instead of BEGIN, locking read, UPDATE, COMMIT; on the Data API 2 calls
   * instead of 5, and 1 instead of the probe when nothing waits). The UPDATE locks each row it changes and re-checks
   * `claimed_at IS NULL` on the row's latest version (READ COMMITTED's semi-consistent read), so two agents never
   * claim one execution; the second waits for the first's row lock, which autocommit holds for one statement only.
   * The rows are found again by this worker's id and the claim's time (#lastClaim); a lost answer to either
   * statement is the claim loop's "claim in doubt", recovered as before (claimedWithoutStart).
   */
  async claim(request: ClaimRequest): Promise<Execution[]> {
    const { db } = this;
    const { now } = request;
    const leaseExpiresAt = new Date(now.getTime() + request.leaseMs);
    for (let retry = 0; ; retry++) {
      try {
        const claimed = await db
          .updateTable('executions')
          .set((eb) => ({
            claimed_at: now,
            worker_id: request.workerId,
            hostname: request.hostname,
            lease_expires_at: leaseExpiresAt,
            attempt: eb('attempt', '+', 1),
          }))
          .where('claimed_at', 'is', null)
          .where('queue', 'in', [...request.queues])
          // Kysely 0.27 has no orderBy on UPDATE. MariaDB plans `ORDER BY id LIMIT` of an UPDATE as a primary key
          // scan (every older row read); with one queue, the index's own order (queue, claimed_at, id) is id order
          // and walks (queue, claimed_at) as the unclaimed read does.
          .modifyEnd(sql`order by ${sql.join(request.queues.length === 1 ? [sql.ref('queue'), sql.ref('claimed_at'), sql.ref('id')] : [sql.ref('id')])} limit ${sql.lit(Math.floor(request.limit))}`)
          .executeTakeFirst();
        if (Number(claimed.numUpdatedRows) === 0) return [];
        break;
      } catch (error) {
        if (retry >= CLAIM_LOCK_RETRIES || !isRetryableLockError(error)) throw error;
      }
    }
    const rows = await db
      .selectFrom('executions')
      .selectAll()
      .where('worker_id', '=', request.workerId)
      .where('claimed_at', '=', now)
      .where('queue', 'in', [...request.queues])
      .where('finished_at', 'is', null)
      .where('started_at', 'is', null)
      .where('pid', 'is', null)
      .orderBy('id')
      .execute();
    // An earlier claim of this worker in the same millisecond left rows that match as well: they were handed out then.
    // (Rows of one whose answer was lost are not remembered, so they are handed out now: claimed, never run, theirs.)
    const last = this.#lastClaims.get(request.workerId);
    const earlier = last?.at === now.getTime() ? last.ids : new Set<number>();
    const claimed = rows.map(toExecution).filter((execution) => !earlier.has(execution.id));
    this.#lastClaims.set(request.workerId, { at: now.getTime(), ids: new Set([...earlier, ...claimed.map((execution) => execution.id)]) });
    return claimed;
  }
}

/**
 * fencedUpdate for several executions in one statement: each column is `CASE WHEN id = ? THEN ? ... ELSE column
 * END` and the WHERE is each (id, attempt) pair and `finished_at IS NULL`, so every row is fenced on its own
 * attempt. When fewer rows changed than were named, one read tells the held ones from the lost ones (a row held
 * after the UPDATE was held during it: attempts only grow and a finish stays; a row this write finished carries
 * its finish). Answers the lost holds.
 */
export async function fencedUpdateMany(
db: Kysely<Database>,
fencedUpdate: (id: number, attempt: number, set: Updateable<ExecutionTable>) => Promise<void>,
items: readonly FencedSet[],
): Promise<ExecutionHold[]> {
  if (items.length === 0) return [];
  if (items.length === 1) {
    const [item] = items as [FencedSet];
    try {
      await fencedUpdate(item.id, item.attempt, item.set);
      return [];
    } catch (error) {
      if (error instanceof LeaseLostError) return [{ id: item.id, attempt: item.attempt }];
      throw error;
    }
  }
  const columns = [...new Set(items.flatMap((item) => Object.keys(item.set)))] as (keyof ExecutionTable & string)[];
  const set = Object.fromEntries(
    columns.map((column) => {
      const cases = items.filter((item) => column in item.set).map((item) => sql`when ${sql.ref('id')} = ${item.id} then ${(item.set as Record<string, unknown>)[column]}`);
      return [column, sql`case ${sql.join(cases, sql` `)} else ${sql.ref(column)} end`];
    }),
  ) as Updateable<ExecutionTable>;
  const result = await db
    .updateTable('executions')
    .set(set)
    .where((eb) => eb.or(items.map((item) => eb.and([eb('id', '=', item.id), eb('attempt', '=', item.attempt)]))))
    .where('finished_at', 'is', null)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === items.length) return [];
  const rows = await db
    .selectFrom('executions')
    .select(['id', 'attempt', 'finished_at', 'exit_status', 'term_signal', 'lost_reason'])
    .where('id', 'in', items.map((item) => item.id))
    .execute();
  const byId = new Map(rows.map((row) => [fromDbInt(row.id), row]));
  const held = (item: FencedSet): boolean => {
    const row = byId.get(item.id);
    if (row === undefined || Number(row.attempt) !== item.attempt) return false;
    if (row.finished_at === null) return true;
    // Finished: by this very write (a finish), or by someone else before it (the monitor, which names a reason).
    const { set } = item;
    return (
      set.finished_at instanceof Date &&
      fromDbTime(row.finished_at).getTime() === set.finished_at.getTime() &&
      (row.exit_status === null ? null : Number(row.exit_status)) === set.exit_status &&
      row.term_signal === set.term_signal &&
      row.lost_reason === set.lost_reason
    );
  };
  return items.filter((item) => !held(item)).map((item) => ({ id: item.id, attempt: item.attempt }));
}

/** The columns a finish writes. */
export function finishColumns(finish: FinishRecord): Updateable<ExecutionTable> {
  const set: Updateable<ExecutionTable> = {
    finished_at: finish.finishedAt,
    exit_status: finish.exitStatus,
    term_signal: finish.termSignal === null ? null : finish.termSignal.slice(0, TERM_SIGNAL_MAX),
    ...outputColumns(finish.head, finish.tail),
    lost_reason: finish.lostReason ? finish.lostReason.slice(0, LOST_REASON_MAX) : null,
  };
  if (finish.startedAt !== undefined) set.started_at = finish.startedAt;
  if (finish.pid !== undefined) set.pid = finish.pid;
  return set;
}
