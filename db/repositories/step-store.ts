import type { Kysely, Transaction, UpdateQueryBuilder, UpdateResult } from 'kysely';
import type { InstanceCancellation } from '../../core/engine/workflow-engine';
import { historyOf } from '../../core/engine/workflow-engine';
import { formatExecutionResult } from '../../core/engine/execution-result';
import { LOG_LEVEL, TOKEN_STATUS, type Execution, type Token } from '../../core/model';
import type { Clock, IdGenerator, StepOutcome, StepReader, StepWriter } from '../../core/ports';
import { wakeAfterCommit, wakeWhenUnchanged } from '../../core/services/processor-service';
import { isDuplicateKeyError, isRetryableLockError } from '../db-errors';
import type { Database } from '../schema';
import { insertEvents, insertLogs, type Db } from './log-event-writer';
import { chunked } from './paging';
import { endInstances, historiesBeside, insertHistories, joinBeside, requestKills, writeBatchRest } from './step-batch-writer';
import { idsFor, needsTransaction } from './step-outcome-shape';
import { StepReads } from './step-reads';
import { fenceAll } from './token-fences';
import { withTransaction } from './transaction';
import type { LaunchRepository } from './launch-repository';
import { fromExecution, fromToken, toExecution } from './row-mappers';

type TokenUpdate = UpdateQueryBuilder<Database, 'tokens', 'tokens', UpdateResult>;

/** Orphaned executions archived per pass. */
const ORPHAN_BATCH = 100;

/** Ids the transaction writing these chains may hand out. */
const idsForChains = (chains: readonly (readonly StepOutcome[])[]) => chains.flat().reduce((n, o) => n + idsFor(o), 0);

/** Thrown inside a transaction to roll it back when the token's version moved on. */
class LostRace extends Error {}

/**
 * The engine's ports on the database. A pass's listing reads its tokens with their executions (and their
 * instances in one batch), so a processor pass costs a few queries for all of them instead of some per token.
 *
 * Writes are fenced on the token's version (`UPDATE ... WHERE id = ? AND version = ?`). An outcome that only
 * moves the token, logs, or queues its command is written without a transaction: the fenced update goes first,
 * and if the process dies before the rest, the next step simply queues the command again (the unique key on
 * `executions.token_id` keeps it single). Anything else is written in one transaction with its events (outbox).
 */
export class StepStore extends StepReads implements StepReader, StepWriter {
  private executionCache: Map<number, Execution | undefined> | undefined;
  /** Instances ended by this pass's steps whose waiters wakeWaiters() has not woken yet. */
  private readonly endedInstances = new Set<number>();
  /** Whether finished commands without a token may exist (see noteOrphans); the first pass looks. */
  private orphansPossible = true;

  constructor(
    db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly launches: LaunchRepository,
    /**
     * boundedReads: rows paged by width (the Data API's 1 MiB); historiesBeside: see step-batch-writer.ts;
     * batchFences: a batch's fences in two statements (token-fences.ts, MySQL and the Data API, where each is a
     * round trip; SQLite's are microseconds and cached by their text, which a batch's length would vary).
     */
    private readonly options: { boundedReads: boolean; historiesBeside?: boolean; batchFences?: boolean } = { boundedReads: true },
  ) {
    super(db);
  }

  /**
   * Wakes the tokens waiting for the instances the steps of this pass ended, together (a busy pass ends hundreds of
   * instances; two statements each were a fifth of a job's cost, issue 18): one read, and the wakes it finds needed.
   */
  async wakeWaiters(): Promise<void> {
    const ended = [...this.endedInstances];
    this.endedInstances.clear();
    await this.wakeWaitersOf(ended);
  }

  /** Forgets prefetched reads (call at the end of a pass). */
  clearPrefetch(): void {
    this.executionCache = undefined;
    this.endInstanceBatch();
  }

  /**
   * Up to `limit` tokens with something to do, their executions prefetched: those whose command ended (by
   * executions_finished_idx) and those whose wake time has come (by tokens_wake_idx). Reads no other token. What a
   * hint's read found (hintFinished), if any, is the batch instead.
   */
  async listDueTokens(limit: number): Promise<Token[]> {
    let due = await this.takeHinted(limit);
    const now = this.clock.now();
    if (due.length === 0 && !this.options.boundedReads) return this.listDueUnbounded(limit, now);
    if (due.length === 0) {
      // Two statements (issue 18; six before): the due tokens' and executions' widths, then both joined, in pages.
      const listing = await this.listDueWidths(limit, now);
      this.noteOrphans(listing.endedFull, listing.endedTokenIds, listing.endedFound);
      due = await this.readDueTokens(listing.widths);
    }
    this.executionCache = new Map(due.map(({ token, execution }) => [token.id, execution]));
    return due.map((d) => d.token);
  }

  /** Whether a pass would find anything now (a due token, an orphan), in one statement: the tick asks before its lease. */
  async hasDueWork(): Promise<boolean> {
    if (this.orphansPossible) return true;
    const listing = await this.listDueWidths(1, this.clock.now());
    return listing.widths.length > 0 || listing.endedTokenIds.length > listing.endedFound;
  }

  /** The same where responses are unbounded (MySQL, SQLite): two joined reads (StepReads.listDueJoined), no prefetch. */
  private async listDueUnbounded(limit: number, now: Date): Promise<Token[]> {
    const { due, endedFull, endedTokenIds, endedFound } = await this.listDueJoined(limit, now);
    this.noteOrphans(endedFull, endedTokenIds, endedFound);
    this.executionCache = new Map(due.map(({ token, execution }) => [token.id, execution]));
    // An instance row holds the script and the environment: read in one batch for the pass.
    if (due.length > 0) this.startInstanceBatch(due.map((d) => d.token.instanceId));
    return due.map((d) => d.token);
  }

  /** A step that changed nothing: the token sleeps until its next recheck, unless it moved (or was woken) meanwhile. */
  async postpone(token: Token): Promise<void> {
    const wakeAt = wakeWhenUnchanged(token, this.executionCache?.get(token.id), this.clock.now());
    try {
      await this.db.updateTable('tokens').set({ wake_at: wakeAt }).where('id', '=', token.id).where('version', '=', token.version).execute();
    } catch (error) {
      // Another writer holds the row: it is changing the token, which is stepped again anyway.
      if (!isRetryableLockError(error)) throw error;
    }
  }

  async findExecutionByToken(tokenId: number): Promise<Execution | undefined> {
    if (this.executionCache?.has(tokenId)) return this.executionCache.get(tokenId);
    const row = await this.db.selectFrom('executions').selectAll().where('token_id', '=', tokenId).executeTakeFirst();
    return row ? toExecution(row) : undefined;
  }

  async commit(outcome: StepOutcome): Promise<boolean> {
    let committed = false;
    try {
      committed = await this.write(outcome);
    } finally {
      // What the pass knows of the token's execution stays true only after its own write.
      if (committed) this.rememberExecutionOf(outcome);
      else this.executionCache?.delete(outcome.tokenId);
    }
    return committed;
  }

  /** A step not yet written, as the next step of its chain reads it (commitChains writes it, or forgets it if lost). */
  stage(outcome: StepOutcome): void {
    if (outcome.newExecution) this.executionCache?.set(outcome.tokenId, outcome.newExecution);
    else if (outcome.archivedExecution) this.executionCache?.set(outcome.tokenId, undefined);
  }

  /**
   * Writes chains of steps, each chain the steps one token took in a row (each step's expectedVersion the previous
   * step's new version), in one transaction for all of them (issue 18: a commit per step was most of a no-op job's
   * cost). Each chain is fenced once, on its first step's version, and writes its last step's token; a chain whose
   * fence matched no row (another processor moved the token) writes nothing else and answers false. The rest of
   * every chain's writes go in one statement per table where several write the same one. On an error (a deadlock
   * victim, a duplicate command), every chain is written again on its own, so one bad outcome blocks no other.
   */
  async commitChains(chains: readonly (readonly StepOutcome[])[]): Promise<boolean[]> {
    if (chains.length === 0) return [];
    if (chains.length === 1 && chains[0]!.length === 1) return [await this.commit(chains[0]![0]!)];
    let results: boolean[];
    let failure: unknown;
    try {
      results = await withTransaction(this.db, this.ids, idsForChains(chains), (trx) => this.writeChains(trx, chains));
    } catch {
      results = [];
      for (const chain of chains) {
        try {
          results.push(await this.writeChainAlone(chain));
        } catch (error) {
          failure ??= error;
          results.push(false);
        }
      }
    }
    const ended: number[] = [];
    chains.forEach((chain, i) => {
      if (!results[i]) return void this.executionCache?.delete(chain[0]!.tokenId);
      for (const outcome of chain) {
        this.rememberExecutionOf(outcome);
        if (outcome.instancePatch?.finishedAt || outcome.instancePatch?.canceledAt) ended.push(outcome.instanceId);
      }
    });
    if (this.executionCache !== undefined) for (const id of ended) this.endedInstances.add(id);
    else await this.wakeWaitersOf(ended);
    if (failure !== undefined) throw failure;
    return results;
  }

  /** A chain on its own: one transaction fenced on its first step, or (a single step) the step's own commit. */
  private async writeChainAlone(chain: readonly StepOutcome[]): Promise<boolean> {
    if (chain.length === 1) return this.write(chain[0]!, false);
    try {
      return (await withTransaction(this.db, this.ids, idsForChains([chain]), (trx) => this.writeChains(trx, [chain])))[0]!;
    } catch (error) {
      // Rolled back whole, like a lost race: a deadlock victim, or another processor queued the token's command first
      // (the unique key on executions.token_id). The token is stepped again on fresh reads.
      if (isRetryableLockError(error) || isDuplicateKeyError(error)) return false;
      throw error;
    }
  }

  /** The writes of commitChains inside its transaction; which chains' fences matched. */
  private async writeChains(trx: Transaction<Database>, chains: readonly (readonly StepOutcome[])[]): Promise<boolean[]> {
    const beside = this.options.historiesBeside ? historiesBeside(this.db, chains.flat()) : undefined;
    // Every fence first: with batchFences several chains' at once (all matched, or FencesMissed and each chain
    // again alone), else one chain at a time, where a chain whose token moved on writes nothing else.
    const batched = chains.length > 1 && this.options.batchFences === true;
    if (batched) {
      await fenceAll(trx, chains, this.clock.now());
      for (const chain of chains) await this.wakeParentOf(trx, chain.at(-1)!);
    }
    const results: boolean[] = [];
    for (const chain of chains) results.push(batched || (await this.writeToken(trx, { ...chain.at(-1)!, expectedVersion: chain[0]!.expectedVersion })));
    const written = chains.filter((_, i) => results[i]).flat();
    if (written.length > 0) await writeBatchRest(trx, written, { ids: this.ids, clock: this.clock, launches: this.launches }, beside !== undefined);
    await joinBeside(beside);
    return results;
  }

  /** `wake`: the instance ended by this outcome wakes its waiters (commitChains wakes them itself). */
  private async write(outcome: StepOutcome, wake = true): Promise<boolean> {
    if (needsTransaction(outcome)) {
      try {
        await withTransaction(this.db, this.ids, idsFor(outcome), async (trx) => {
          if (!(await this.writeChains(trx, [[outcome]]))[0]) throw new LostRace();
        });
      } catch (error) {
        // A deadlock victim was rolled back whole: like a lost race, the token is stepped again next pass.
        if (error instanceof LostRace || isRetryableLockError(error)) return false;
        throw error;
      }
      const patch = outcome.instancePatch;
      if (wake && (patch?.finishedAt || patch?.canceledAt)) {
        // In a processor pass, the batch's ended instances wake their waiters together (wakeWaiters).
        if (this.executionCache !== undefined) this.endedInstances.add(outcome.instanceId);
        else await this.wakeWaitersOf([outcome.instanceId]);
      }
      return true;
    }
    try {
      if (!(await this.writeToken(this.db, outcome))) return false;
    } catch (error) {
      if (isRetryableLockError(error)) return false;
      throw error;
    }
    if (outcome.newExecution) {
      try {
        await this.db.insertInto('executions').values(fromExecution(outcome.newExecution)).execute();
      } catch (error) {
        // Another processor read the token between our fenced update and this insert, found no command yet and
        // queued its own first: the unique key on token_id kept one. Its step stands; ours changed nothing else.
        if (isDuplicateKeyError(error)) return false;
        throw error;
      }
    }
    await insertLogs(this.db, this.ids, outcome.logs);
    return true;
  }

  /**
   * After a commit, what the pass knows of the token's execution without reading: the one it queued, none once it
   * archived the last, else what it knew before (a step of the same token in this pass then reads nothing).
   */
  private rememberExecutionOf(outcome: StepOutcome): void {
    if (outcome.instancePatch !== undefined || outcome.deleteInstanceTokens === true) this.forgetInstance(outcome.instanceId);
    if (outcome.newExecution) this.executionCache?.set(outcome.tokenId, outcome.newExecution);
    else if (outcome.archivedExecution) this.executionCache?.set(outcome.tokenId, undefined);
  }

  /**
   * A finished command whose token is gone is an orphan: the listing sees it among the ended commands when their
   * tokens are not all found, or cannot tell when its read of them was full.
   */
  private noteOrphans(endedFull: boolean, endedTokenIds: readonly number[], tokensFound: number): void {
    if (endedFull || tokensFound < endedTokenIds.length) this.orphansPossible = true;
  }

  /**
   * Archives finished commands whose token is gone (canceled or critical instances), logging their result. Reads
   * nothing after a look found none, until a listing of the ended commands shows one may exist again.
   */
  async archiveOrphanedExecutions(limit = ORPHAN_BATCH): Promise<number> {
    if (!this.orphansPossible) return 0;
    const rows = await this.db
      .selectFrom('executions as e')
      .selectAll('e')
      .where('e.finished_at', 'is not', null)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('tokens as t').select('t.id').whereRef('t.id', '=', 'e.token_id'))))
      .limit(limit)
      .execute();
    if (rows.length < limit) this.orphansPossible = false;
    for (const row of rows) {
      const execution = toExecution(row);
      await withTransaction(this.db, this.ids, 2, async (trx) => {
        const deleted = await trx.deleteFrom('executions').where('id', '=', execution.id).executeTakeFirst();
        if (Number(deleted.numDeletedRows) === 0) return;
        await insertHistories(trx, [historyOf(execution, await this.ids.nextId())]);
        await insertLogs(trx, this.ids, [
          { instanceId: execution.instanceId, level: LOG_LEVEL.warn, message: `(execution ${execution.uuid}) ${formatExecutionResult(execution)}`, createdAt: this.clock.now() },
        ]);
      });
    }
    return rows.length;
  }

  /** Applies a cancel if the instance is still open; false when it had already ended. */
  async cancel(cancellation: InstanceCancellation): Promise<boolean> {
    const canceled = await withTransaction(this.db, this.ids, cancellation.kills.length + cancellation.logs.length, async (trx) => {
      const result = await trx
        .updateTable('job_instances')
        .set({ canceled_at: cancellation.canceledAt })
        .where('id', '=', cancellation.instanceId)
        .where('finished_at', 'is', null)
        .where('canceled_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await endInstances(trx, [cancellation.instanceId], []);
      await requestKills(trx, this.ids, this.clock, cancellation.kills);
      await insertLogs(trx, this.ids, cancellation.logs);
      await insertEvents(trx, cancellation.events);
      return true;
    });
    if (canceled) await this.wakeWaitersOf([cancellation.instanceId]);
    return canceled;
  }

  private async writeToken(db: Db, outcome: StepOutcome): Promise<boolean> {
    const fenced = { id: outcome.tokenId, version: outcome.expectedVersion };
    if (outcome.token === null) {
      const result = await db.deleteFrom('tokens').where('id', '=', fenced.id).where('version', '=', fenced.version).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    }
    const { path, status, message, context, version, updated_at } = fromToken(outcome.token);
    const wake_at = wakeAfterCommit(outcome, this.clock.now());
    const waits_on_instance_id = outcome.token.context.sub_process_id ?? null;
    const result = await db
      .updateTable('tokens')
      .set({ path, status, message, context, version, updated_at, wake_at, waits_on_instance_id })
      .where('id', '=', fenced.id)
      .where('version', '=', fenced.version)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return false;
    await this.wakeParentOf(db, outcome);
    return true;
  }

  /** A fork's child that ends wakes its parent, which waits for all of them (by its key, after the child's fence). */
  private async wakeParentOf(db: Db, outcome: StepOutcome): Promise<void> {
    const parentId = outcome.token?.status === TOKEN_STATUS.finished ? outcome.token.parentId : null;
    if (parentId !== null) await this.wake(db, (qb) => qb.where('id', '=', parentId));
  }

  /**
   * Makes tokens due now. The version moves too, so a processor that stepped one of them on what it read before
   * can neither write that outcome nor put the token back to sleep: it steps it again on fresh reads.
   */
  private async wake(db: Db, where: (qb: TokenUpdate) => TokenUpdate): Promise<void> {
    await where(db.updateTable('tokens').set((eb) => ({ wake_at: this.clock.now(), version: eb('version', '+', 1) }))).execute();
  }

  /**
   * An instance that ended wakes the tokens waiting for it: its sub process parent, and `wait:` tokens. After the
   * commit, on their own: these range updates would otherwise hold their index locks for the whole transaction.
   * Only the wakes a read finds waiters for are written (waitersOf). Should the process die in between, or a waiter
   * commit after that read, the waiters' recheck (WAITING_RECHECK_MS) finds the end instead.
   */
  private async wakeWaitersOf(instanceIds: readonly number[]): Promise<void> {
    if (instanceIds.length === 0) return;
    try {
      const { parents, waiting } = await this.waitersOf(instanceIds);
      if (parents) for (const chunk of chunked(instanceIds)) await this.wake(this.db, (qb) => qb.where('waits_on_instance_id', 'in', chunk));
      if (waiting) await this.wake(this.db, (qb) => qb.where('status', '=', TOKEN_STATUS.waiting));
    } catch (error) {
      // A waiter being written meanwhile is stepped again anyway; the recheck covers the rest.
      if (!isRetryableLockError(error)) throw error;
    }
  }
}
