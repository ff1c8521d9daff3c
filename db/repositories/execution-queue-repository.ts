/**
 * The agent's side of the `executions` table (invariant 1): atomic claims that hand out an attempt number and a
 * lease, and writes fenced on that attempt, so a write from a stale attempt changes nothing.
 *
 * Expired leases are NOT re-claimed. A lease that ran out means the agent stopped heart-beating, not that its
 * command stopped: the machine may only have lost its network while the command goes on. Kuroko2 never ran a
 * command twice on its own, and neither does this: the monitor finishes executions of lost workers as lost
 * (D10), and a person decides whether to retry. `lease_expires_at` is what the monitor reads to decide.
 */
import type { Kysely, Transaction, Updateable } from 'kysely';
import { LeaseLostError } from '../../core/errors';
import type { Execution } from '../../core/model';
import type { IdGenerator } from '../../core/ports';
import { fromDbInt, fromDbTime } from '../column-codec';
import type { DatabaseCapabilities } from '../connection';
import { isRetryableLockError } from '../db-errors';
import type { Database, ExecutionRow, ExecutionTable } from '../schema';
import { fencedUpdateMany, finishColumns, UpdateClaims, type ClaimHints } from './execution-update-writes';
import { outputColumns, toExecution } from './row-mappers';

/** Lengths of the bounded text columns (see the initial migration). */
const SIGNAL_RESULT_MAX = 1024;
/** A claim that deadlocks (MySQL may pick it as the victim) is simply run again this many times. */
const CLAIM_LOCK_RETRIES = 3;

export interface ClaimRequest {
  workerId: number;
  hostname: string;
  queues: readonly string[];
  /** At most this many executions (the agent's free slots). */
  limit: number;
  leaseMs: number;
  now: Date;
  /**
   * Read first whether anything waits, and skip the transaction when nothing does (adaptive polling). Only where the
   * claim is a transaction (SQLite): a claim by one UPDATE is its own probe.
   */
  probeFirst?: boolean;
  /** Work was just announced (a doorbell rang): claim without the probe, whatever the above and the dialect say. */
  expectWork?: boolean;
}

/** One claimed execution the agent holds: the pair every fenced write names. */
export interface ExecutionHold {
  id: number;
  attempt: number;
}

export interface StartRecord {
  pid: number;
  startedAt: Date;
}

/** Head and tail of the output as stored (see the agent: tail is '' unless bytes were dropped between them). */
export interface OutputRecord {
  head: string;
  tail: string;
}

export interface FinishRecord extends OutputRecord {
  /** 0-255, or null for a death by signal or a lost command. */
  exitStatus: number | null;
  termSignal: string | null;
  finishedAt: Date;
  lostReason?: string | null;
  /** Written again at the finish, so a start whose write failed is still recorded (and a spawn failure has one). */
  startedAt?: Date;
  pid?: number | null;
}

/** A kill request addressed to one attempt of an execution. */
export interface PendingSignal {
  id: number;
  executionId: number;
  attempt: number;
  signal: string;
  reason: string;
  requestedAt: Date;
}

export interface SignalDelivery {
  deliveredAt: Date;
  result: string;
}

export interface MemorySample {
  executionId: number;
  instanceId: number;
  definitionId: number;
  rssKb: number;
  sampledAt: Date;
}

/** A command of this host that was finished as lost (D10) while its process group may still be running. */
export interface LostCommand {
  executionId: number;
  instanceId: number;
  /** The process group (the leader's pid). */
  pid: number;
  /** When it was finished as lost. */
  lostAt: Date;
}

/** The queue repository needs the handle's Kysely and capabilities only. */
export interface QueueDatabase {
  db: Kysely<Database>;
  capabilities: DatabaseCapabilities;
  /** The sessions already run READ COMMITTED (DatabaseHandle.readCommittedSessions): claims skip `SET TRANSACTION`. */
  readCommittedSessions?: boolean;
}

/** Claims, fenced progress writes, kill signals and memory samples of the executions an agent runs. */
export class ExecutionQueueRepository {
  /** Claims by one UPDATE where the dialect can (MySQL, MariaDB, Aurora MySQL). */
  readonly #updateClaims: UpdateClaims;

  constructor(
    private readonly handle: QueueDatabase,
    private readonly ids: IdGenerator,
  ) {
    this.#updateClaims = new UpdateClaims(handle.db);
  }

  /**
   * Atomically claims up to `limit` unclaimed executions of the given queues (lowest id first) and returns them
   * with their new attempt number. Never re-claims an expired lease (see the file comment).
   */
  async claim(request: ClaimRequest & ClaimHints): Promise<Execution[]> {
    if (request.limit <= 0 || request.queues.length === 0) return [];
    const { db, capabilities } = this.handle;
    if (capabilities.updateLimit) return this.#updateClaims.claim(request);
    if (request.expectWork !== true && (capabilities.costlyStatements || request.probeFirst === true)) {
      // An idle agent polls every second or so; one cheap read spares the three calls of an empty transaction.
      const probe = await this.unclaimed(db, request.queues, 1).execute();
      if (probe.length === 0) return [];
    }
    for (let retry = 0; ; retry++) {
      try {
        // READ COMMITTED: the locking read then takes no gap locks, so racing agents and the processor's inserts
        // of new executions do not wait on each other. SQLite and the Data API ignore the setting. A pool whose
        // sessions run READ COMMITTED already (the separate agent's) spares the SET TRANSACTION round trip.
        const transaction = this.handle.readCommittedSessions === true ? db.transaction() : db.transaction().setIsolationLevel('read committed');
        return await transaction.execute((trx) => this.claimIn(trx, request));
      } catch (error) {
        if (retry >= CLAIM_LOCK_RETRIES || !isRetryableLockError(error)) throw error;
      }
    }
  }

  private async claimIn(trx: Transaction<Database>, request: ClaimRequest): Promise<Execution[]> {
    // SQLite has no row locks but serialises writers (BEGIN IMMEDIATE): the transaction alone makes the
    // select-then-update atomic. MySQL skips rows another agent has locked instead of waiting for them. The
    // ids are read first because MySQL rejects LIMIT inside an IN (subquery) (error 1235).
    const { skipLocked, costlyStatements } = this.handle.capabilities;
    // Where responses are unbounded, the locked rows are read whole at once and the claim's own values applied to
    // them: the rows are locked (or the writer serialised), so the UPDATE changes every one, and the re-read after
    // it is one round trip on the way from a queued command to its start (issue 18). The Data API reads ids first.
    const whole = trx.selectFrom('executions').selectAll().where('claimed_at', 'is', null).where('queue', 'in', [...request.queues]).orderBy('id').limit(request.limit);
    const locked = costlyStatements
      ? await (skipLocked ? this.unclaimed(trx, request.queues, request.limit).forUpdate().skipLocked() : this.unclaimed(trx, request.queues, request.limit)).execute()
      : await (skipLocked ? whole.forUpdate().skipLocked() : whole).execute();
    const ids = locked.map((row) => fromDbInt(row.id));
    if (ids.length === 0) return [];
    const leaseExpiresAt = new Date(request.now.getTime() + request.leaseMs);
    const claimed = await trx
      .updateTable('executions')
      .set((eb) => ({
        claimed_at: request.now,
        worker_id: request.workerId,
        hostname: request.hostname,
        lease_expires_at: leaseExpiresAt,
        attempt: eb('attempt', '+', 1),
      }))
      .where('id', 'in', ids)
      .where('claimed_at', 'is', null)
      .executeTakeFirst();
    if (!costlyStatements && Number(claimed.numUpdatedRows) === ids.length) {
      const { workerId, hostname, now } = request;
      return (locked as ExecutionRow[]).map((row) => ({ ...toExecution(row), claimedAt: now, workerId, hostname, leaseExpiresAt, attempt: Number(row.attempt) + 1 }));
    }
    const rows = await trx.selectFrom('executions').selectAll().where('id', 'in', ids).orderBy('id').execute();
    return rows.filter((row) => row.worker_id !== null && fromDbInt(row.worker_id) === request.workerId).map(toExecution);
  }

  /**
   * Unclaimed executions of the queues. Ordered by id (ids are handed out in blocks, so this is nearly
   * creation order): with one queue, MySQL walks the (queue, claimed_at) index, whose entries end in the primary
   * key, in order and stops after `limit` rows; ordering by created_at would sort, and lock, every waiting row.
   */
  private unclaimed(db: Kysely<Database>, queues: readonly string[], limit: number) {
    return db
      .selectFrom('executions')
      .select('id')
      .where('claimed_at', 'is', null)
      .where('queue', 'in', [...queues])
      .orderBy('id')
      .limit(limit);
  }

  /**
   * Unfinished executions claimed by these workers that have neither pid nor start: the agent compares them with
   * what it runs to find claims whose COMMIT succeeded but whose answer never reached it.
   */
  async claimedWithoutStart(workerIds: readonly number[]): Promise<ExecutionHold[]> {
    if (workerIds.length === 0) return [];
    const rows = await this.handle.db
      .selectFrom('executions')
      .select(['id', 'attempt'])
      .where('worker_id', 'in', [...workerIds])
      .where('finished_at', 'is', null)
      .where('pid', 'is', null)
      .where('started_at', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map((row) => ({ id: fromDbInt(row.id), attempt: Number(row.attempt) }));
  }

  /**
   * Puts claims that never started a process back in the queue, fenced on the attempt, the worker and the absence
   * of any start: the next claim hands out a new attempt, so a late write of the released attempt changes nothing.
   * Answers how many were released.
   */
  async releaseClaims(workerIds: readonly number[], holds: readonly ExecutionHold[]): Promise<number> {
    if (workerIds.length === 0 || holds.length === 0) return 0;
    const result = await this.handle.db
      .updateTable('executions')
      .set({ claimed_at: null, worker_id: null, hostname: null, lease_expires_at: null })
      .where((eb) => eb.or(holds.map((hold) => eb.and([eb('id', '=', hold.id), eb('attempt', '=', hold.attempt)]))))
      .where('worker_id', 'in', [...workerIds])
      .where('finished_at', 'is', null)
      .where('pid', 'is', null)
      .where('started_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Records the pids of several starts in one statement, each fenced on its own attempt; answers the holds whose
   * attempt no longer held the execution (their write changed nothing, the others' went through).
   */
  async recordStarts(starts: readonly (ExecutionHold & StartRecord)[]): Promise<ExecutionHold[]> {
    return fencedUpdateMany(this.handle.db, (id, attempt, set) => this.fencedUpdate(id, attempt, set), starts.map((start) => ({ id: start.id, attempt: start.attempt, set: { pid: start.pid, started_at: start.startedAt } })));
  }

  /** Records several commands' ends in one statement, each fenced on its own attempt; answers the holds that were lost. */
  async finishMany(finishes: readonly (ExecutionHold & { finish: FinishRecord })[]): Promise<ExecutionHold[]> {
    return fencedUpdateMany(this.handle.db, (id, attempt, set) => this.fencedUpdate(id, attempt, set), finishes.map((item) => ({ id: item.id, attempt: item.attempt, set: finishColumns(item.finish) })));
  }

  /** Records the pid right after spawn; throws LeaseLostError when the attempt no longer holds the execution. */
  async recordStart(id: number, attempt: number, start: StartRecord): Promise<void> {
    await this.fencedUpdate(id, attempt, { pid: start.pid, started_at: start.startedAt });
  }

  /** Stores the output's head and tail so far; throws LeaseLostError when the attempt lost the execution. */
  async recordOutput(id: number, attempt: number, output: OutputRecord): Promise<void> {
    await this.fencedUpdate(id, attempt, outputColumns(output.head, output.tail));
  }

  /** Records how the command ended; throws LeaseLostError (and changes nothing) for a stale or finished attempt. */
  async finish(id: number, attempt: number, finish: FinishRecord): Promise<void> {
    await this.fencedUpdate(id, attempt, finishColumns(finish));
  }

  /**
   * Extends the leases of the executions a worker holds (one statement for all) and returns the holds that are
   * still current; a missing one was finished or re-assigned by someone else. The worker id is written too, so
   * an agent that had to register again keeps its executions.
   */
  async renewLeases(workerId: number, holds: readonly ExecutionHold[], until: Date): Promise<ExecutionHold[]> {
    if (holds.length === 0) return [];
    const { db } = this.handle;
    const result = await db
      .updateTable('executions')
      .set({ lease_expires_at: until, worker_id: workerId })
      .where('finished_at', 'is', null)
      .where((eb) => eb.or(holds.map((hold) => eb.and([eb('id', '=', hold.id), eb('attempt', '=', hold.attempt)]))))
      .executeTakeFirst();
    // `until` is new on every heartbeat, so each held row changes: all of them matched, the usual case.
    if (Number(result.numUpdatedRows) === holds.length) return [...holds];
    // Some hold is gone; the row count cannot say which, one read can.
    const rows = await db
      .selectFrom('executions')
      .select(['id', 'attempt'])
      .where('id', 'in', holds.map((hold) => hold.id))
      .where('finished_at', 'is', null)
      .execute();
    const current = new Set(rows.map((row) => `${fromDbInt(row.id)}/${Number(row.attempt)}`));
    return holds.filter((hold) => current.has(`${hold.id}/${hold.attempt}`));
  }

  /** Kill requests not yet delivered for these executions, oldest first. */
  async pendingSignals(executionIds: readonly number[]): Promise<PendingSignal[]> {
    if (executionIds.length === 0) return [];
    const rows = await this.handle.db
      .selectFrom('process_signals')
      .select(['id', 'execution_id', 'attempt', 'signal', 'reason', 'requested_at'])
      .where('execution_id', 'in', [...executionIds])
      .where('delivered_at', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map((row) => ({
      id: fromDbInt(row.id),
      executionId: fromDbInt(row.execution_id),
      attempt: Number(row.attempt),
      signal: row.signal,
      reason: row.reason,
      requestedAt: fromDbTime(row.requested_at),
    }));
  }

  /** Records what became of a signal; a signal is delivered once (a second record changes nothing). */
  async recordSignalDelivery(signalId: number, delivery: SignalDelivery): Promise<void> {
    await this.handle.db
      .updateTable('process_signals')
      .set({ delivered_at: delivery.deliveredAt, result: delivery.result.slice(0, SIGNAL_RESULT_MAX) })
      .where('id', '=', signalId)
      .where('delivered_at', 'is', null)
      .execute();
  }

  /**
   * Commands started on `hostname` and finished as lost since `since`: those still in `executions` with a
   * lost_reason, and those already archived, where a started command without exit status or signal was lost.
   */
  async lostCommands(hostname: string, since: Date): Promise<LostCommand[]> {
    const { db } = this.handle;
    const [current, archived] = await Promise.all([
      db
        .selectFrom('executions')
        .select(['id', 'job_instance_id', 'pid', 'finished_at'])
        .where('hostname', '=', hostname)
        .where('lost_reason', 'is not', null)
        .where('pid', 'is not', null)
        .where('finished_at', '>=', since)
        .execute(),
      db
        .selectFrom('execution_histories')
        .select(['execution_id as id', 'job_instance_id', 'pid', 'finished_at'])
        .where('hostname', '=', hostname)
        .where('finished_at', '>=', since)
        .where('pid', 'is not', null)
        .where('exit_status', 'is', null)
        .where('term_signal', 'is', null)
        .execute(),
    ]);
    const lost = new Map<number, LostCommand>();
    for (const row of [...current, ...archived]) {
      if (row.pid === null || row.finished_at === null) continue;
      lost.set(fromDbInt(row.id), { executionId: fromDbInt(row.id), instanceId: fromDbInt(row.job_instance_id), pid: Number(row.pid), lostAt: fromDbTime(row.finished_at) });
    }
    return [...lost.values()];
  }

  /** The executions with these ids (those that still exist in `executions`). */
  async executionsById(ids: readonly number[]): Promise<Execution[]> {
    if (ids.length === 0) return [];
    const rows = await this.handle.db.selectFrom('executions').selectAll().where('id', 'in', [...ids]).execute();
    return rows.map(toExecution);
  }

  /** Stores one RSS sample of a command's process group. */
  async recordMemorySample(sample: MemorySample): Promise<void> {
    await this.handle.db
      .insertInto('memory_samples')
      .values({
        id: await this.ids.nextId(),
        execution_id: sample.executionId,
        job_instance_id: sample.instanceId,
        job_definition_id: sample.definitionId,
        rss_kb: sample.rssKb,
        sampled_at: sample.sampledAt,
      })
      .execute();
  }

  /** `UPDATE ... WHERE id = ? AND attempt = ? AND finished_at IS NULL`, or LeaseLostError. */
  private async fencedUpdate(id: number, attempt: number, set: Updateable<ExecutionTable>): Promise<void> {
    const { db } = this.handle;
    const result = await db
      .updateTable('executions')
      .set(set)
      .where('id', '=', id)
      .where('attempt', '=', attempt)
      .where('finished_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return;
    // A driver that counts changed rather than matched rows reports 0 for a write of unchanged values
    // (a rolling tail that came round to the same text): look before calling the lease lost.
    const held = await db
      .selectFrom('executions')
      .select('id')
      .where('id', '=', id)
      .where('attempt', '=', attempt)
      .where('finished_at', 'is', null)
      .executeTakeFirst();
    if (held === undefined) throw new LeaseLostError(id, attempt);
  }
}
