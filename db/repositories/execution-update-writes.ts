/**
 * The agent's statements that name several executions at once (issue 18), beside execution-queue-repository.ts:
 * the claim as one UPDATE where the dialect allows it, and fenced writes of several executions in one statement.
 */
import { sql, type Kysely, type Updateable, type UpdateQueryBuilder, type UpdateResult } from 'kysely';
import { LeaseLostError } from '../../core/errors';
import type { Execution } from '../../core/model';
import { fromDbInt, fromDbTime } from '../column-codec';
import { isRetryableLockError } from '../db-errors';
import type { Database, ExecutionRow, ExecutionTable } from '../schema';
import type { ClaimRequest, ExecutionHold, FinishRecord } from './execution-queue-repository';
import { outputColumns, toExecution } from './row-mappers';

/** Lengths of the bounded text columns (see the initial migration). */
const TERM_SIGNAL_MAX = 32;
const LOST_REASON_MAX = 1024;
/** A claim that deadlocks (MySQL may pick it as the victim) is simply run again this many times. */
const CLAIM_LOCK_RETRIES = 3;

/** What a claim may be told besides its ClaimRequest. */
export interface ClaimHints {
  /**
   * Executions the announcement named (a ring's hints): where the claim is one UPDATE, these are tried by id first,
   * in one round trip, and the ordinary claim follows only when none of them is claimed. Other claims ignore them.
   */
  hints?: readonly number[];
}

/** The claiming UPDATE before it is narrowed. */
type ClaimUpdate = UpdateQueryBuilder<Database, 'executions', 'executions', UpdateResult>;

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
   * The rows are found again by this worker's id and the claim's time (#readClaimed); a lost answer to either
   * statement is the claim loop's "claim in doubt", recovered as before (claimedWithoutStart).
   *
   * With hints (the executions a doorbell's ring named), those are tried first by id (#claimHinted): one round trip
   * when it can tell its rows without a read after the UPDATE. When it claims none, the ordinary claim follows.
   */
  async claim(request: ClaimRequest & ClaimHints): Promise<Execution[]> {
    const hinted = [...new Set(request.hints ?? [])].slice(0, Math.max(0, Math.floor(request.limit)));
    if (hinted.length > 0) {
      const claimed = await this.#claimHinted(request, hinted);
      if (claimed.length > 0) return claimed;
    }
    const claimed = await this.#update(request, (query) =>
      // Kysely 0.27 has no orderBy on UPDATE. MariaDB plans `ORDER BY id LIMIT` of an UPDATE as a primary key
      // scan (every older row read); with one queue, the index's own order (queue, claimed_at, id) is id order
      // and walks (queue, claimed_at) as the unclaimed read does.
      query.modifyEnd(sql`order by ${sql.join(request.queues.length === 1 ? [sql.ref('queue'), sql.ref('claimed_at'), sql.ref('id')] : [sql.ref('id')])} limit ${sql.lit(Math.floor(request.limit))}`),
    );
    return claimed === 0 ? [] : this.#readClaimed(request);
  }

  /**
   * The hinted claim: the claiming UPDATE restricted to the hinted ids, and beside it (at once, both autocommitted)
   * a plain read of those rows. The read may see them before or after the UPDATE lands, so a row is a candidate when
   * it reads unclaimed, or claimed by this worker at this claim's time; unstarted either way. Every row the UPDATE
   * claimed is a candidate unless the read saw it in a state the UPDATE could still claim it from yet is not a
   * candidate (claimed by another claim and unstarted: a lost claim's release puts such rows back; unclaimed but
   * started or finished; not there): with no such row, as many candidates as rows changed are exactly the rows
   * claimed, their attempt one more than read when read unclaimed. Otherwise the rows are read by worker and time.
   */
  async #claimHinted(request: ClaimRequest, ids: readonly number[]): Promise<Execution[]> {
    const { workerId, hostname, now } = request;
    const [updated, read] = await Promise.allSettled([
      this.#update(request, (query) => query.where('id', 'in', [...ids])),
      this.db.selectFrom('executions').selectAll().where('id', 'in', [...ids]).orderBy('id').execute(),
    ]);
    if (updated.status === 'rejected') throw updated.reason;
    if (updated.value === 0) return [];
    if (read.status === 'rejected') return this.#readClaimed(request);
    const queues = new Set(request.queues);
    const at = now.getTime();
    const candidates: ExecutionRow[] = [];
    let unsure = ids.length > read.value.length;
    for (const row of read.value) {
      if (!queues.has(row.queue)) continue;
      const unstarted = row.finished_at === null && row.started_at === null && row.pid === null;
      const mineNow = row.claimed_at !== null && row.worker_id !== null && fromDbInt(row.worker_id) === workerId && fromDbTime(row.claimed_at).getTime() === at;
      if (unstarted && (row.claimed_at === null || mineNow)) candidates.push(row);
      else if (row.claimed_at === null || unstarted) unsure = true;
    }
    if (unsure || candidates.length !== updated.value) return this.#readClaimed(request);
    const leaseExpiresAt = new Date(at + request.leaseMs);
    const claimed = candidates.map((row) =>
      row.claimed_at === null ? { ...toExecution(row), claimedAt: now, workerId, hostname, leaseExpiresAt, attempt: Number(row.attempt) + 1 } : toExecution(row),
    );
    return this.#remember(workerId, at, claimed);
  }

  /** The claiming UPDATE (unclaimed rows of the queues, narrowed by `narrow`), retried on deadlocks; answers the rows changed. */
  async #update(request: ClaimRequest, narrow: (query: ClaimUpdate) => ClaimUpdate): Promise<number> {
    const { now } = request;
    const leaseExpiresAt = new Date(now.getTime() + request.leaseMs);
    for (let retry = 0; ; retry++) {
      try {
        const query = this.db
          .updateTable('executions')
          .set((eb) => ({
            claimed_at: now,
            worker_id: request.workerId,
            hostname: request.hostname,
            lease_expires_at: leaseExpiresAt,
            attempt: eb('attempt', '+', 1),
          }))
          .where('claimed_at', 'is', null)
          .where('queue', 'in', [...request.queues]);
        return Number((await narrow(query).executeTakeFirst()).numUpdatedRows);
      } catch (error) {
        if (retry >= CLAIM_LOCK_RETRIES || !isRetryableLockError(error)) throw error;
      }
    }
  }

  /** The rows this worker claimed at the claim's time, less those an earlier claim in the same millisecond handed out. */
  async #readClaimed(request: ClaimRequest): Promise<Execution[]> {
    const rows = await this.db
      .selectFrom('executions')
      .selectAll()
      .where('worker_id', '=', request.workerId)
      .where('claimed_at', '=', request.now)
      .where('queue', 'in', [...request.queues])
      .where('finished_at', 'is', null)
      .where('started_at', 'is', null)
      .where('pid', 'is', null)
      .orderBy('id')
      .execute();
    return this.#remember(request.workerId, request.now.getTime(), rows.map(toExecution));
  }

  /**
   * Leaves out what an earlier claim of this worker in the same millisecond handed out (its rows match as well), and
   * remembers the rest. (Rows of one whose answer was lost are not remembered, so they are handed out now: claimed,
   * never run, theirs.)
   */
  #remember(workerId: number, at: number, claimed: readonly Execution[]): Execution[] {
    const last = this.#lastClaims.get(workerId);
    const earlier = last?.at === at ? last.ids : new Set<number>();
    const fresh = claimed.filter((execution) => !earlier.has(execution.id));
    this.#lastClaims.set(workerId, { at, ids: new Set([...earlier, ...fresh.map((execution) => execution.id)]) });
    return fresh;
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
