/**
 * The writes of step outcomes after their fences, for a batch (StepStore.commitChains) and for one outcome's own
 * transaction alike: one statement per table where several outcomes write the same one, in the order separate
 * commits would have written them.
 */
import { SqliteAdapter, sql, type Insertable, type Transaction } from 'kysely';
import type { Clock, ExecutionHistory, IdGenerator, InstancePatch, KillRequest, StepOutcome } from '../../core/ports';
import { utf8Bytes } from '../../core/row-limits';
import type { Database, InsertableExecutionRow } from '../schema';
import type { LaunchRepository } from './launch-repository';
import { deleteKeyed, updateKeyed } from './keyed-writes';
import { insertEvents, insertLogs, type Db } from './log-event-writer';
import { RESPONSE_BUDGET_BYTES, chunkByBytes, chunked } from './paging';
import { fromExecution, fromExecutionHistory, fromToken } from './row-mappers';
import { EXECUTION_COLUMNS } from './step-reads';

/** The signal a kill request starts with; the agent escalates to KILL after its grace period. */
const KILL_SIGNAL = 'SIGTERM';

/**
 * Rows per multi-row INSERT of a batch (the Data API takes at most 65,536 characters of SQL; an executions row's
 * placeholders take about 200).
 */
const ROWS_PER_INSERT = 100;

/** Characters of a row's text columns: what sizes a multi-row INSERT's request. */
function textLength(row: object): number {
  let n = 0;
  for (const value of Object.values(row)) if (typeof value === 'string') n += value.length;
  return n;
}

/** Inserts rows in statements of at most ROWS_PER_INSERT rows and RESPONSE_BUDGET_BYTES of text (none when there are none). */
async function insertRows<T extends 'tokens' | 'executions'>(trx: Transaction<Database>, table: T, rows: readonly Insertable<Database[T]>[]): Promise<void> {
  for (const chunk of chunkByBytes(rows, textLength, RESPONSE_BUDGET_BYTES, ROWS_PER_INSERT)) await trx.insertInto(table).values(chunk as never).execute();
}

/**
 * Inserts executions, each replacing the row its token already has (the unique key executions_token_key): MySQL's
 * ON DUPLICATE KEY UPDATE, SQLite's ON CONFLICT ... DO UPDATE. Every column is set, the id too: a report fenced on
 * the archived command's id and attempt finds no row, as after a delete. `VALUES(col)` rather than MySQL 8.0.19's row
 * alias: MariaDB has no alias, and Aurora MySQL 3 (8.0) runs VALUES() with a deprecation warning, 1287
 * (https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html). The new row's id is fresh and uuid has no
 * unique key, so token_id is the only key it can meet (the page's caution about several unique keys does not apply).
 */
async function replaceExecutions(trx: Transaction<Database>, rows: readonly InsertableExecutionRow[]): Promise<void> {
  const sqlite = trx.getExecutor().adapter instanceof SqliteAdapter;
  for (const chunk of chunkByBytes(rows, textLength, RESPONSE_BUDGET_BYTES, ROWS_PER_INSERT)) {
    const insert = trx.insertInto('executions').values(chunk);
    await (sqlite
      ? insert.onConflict((oc) => oc.column('token_id').doUpdateSet(Object.fromEntries(EXECUTION_COLUMNS.map((c) => [c, sql.ref(`excluded.${c}`)]))))
      : insert.onDuplicateKeyUpdate(Object.fromEntries(EXECUTION_COLUMNS.map((c) => [c, sql`values(${sql.ref(c)})`])))
    ).execute();
  }
}

export interface BatchWriteDeps {
  ids: IdGenerator;
  clock: Clock;
  launches: LaunchRepository;
}

/**
 * History rows, one per command (execution_histories_execution_key): a command's row already there is kept, so
 * archiving twice (a history written beside a transaction that then rolled back, then the archive again) writes one.
 */
export async function insertHistories(db: Db, histories: readonly ExecutionHistory[]): Promise<void> {
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  for (const chunk of chunkByBytes(histories.map(fromExecutionHistory), textLength, RESPONSE_BUDGET_BYTES, ROWS_PER_INSERT)) {
    const insert = db.insertInto('execution_histories').values(chunk);
    await (sqlite ? insert.onConflict((oc) => oc.column('execution_id').doNothing()) : insert.onDuplicateKeyUpdate({ execution_id: sql.ref('execution_id') })).execute();
  }
}

/**
 * On the Data API, where each statement is a serial call, the archived commands' history rows are written beside
 * the step's transaction (autocommit, idempotent: insertHistories) while it fences and writes, and the transaction
 * commits only once they are in (joinBeside): one call fewer on the way from a command's exit to the next start
 * (issue 18). Rows of a chain whose fence then fails are the rows the step that won (or the orphan archive) writes.
 * Not elsewhere: SQLite's one writer would only wait for the transaction. Undefined when nothing is archived; settles
 * to the error rather than rejecting (a transaction that fails first never awaits it).
 */
export function historiesBeside(db: Db, outcomes: readonly StepOutcome[]): Promise<{ error: unknown } | undefined> | undefined {
  const histories = archivedBy(outcomes);
  return histories.length === 0 ? undefined : insertHistories(db, histories).then(() => undefined, (error: unknown) => ({ error }));
}

/** Waits for historiesBeside's write; throws its error (rolling the transaction back). */
export async function joinBeside(beside: ReturnType<typeof historiesBeside>): Promise<void> {
  const failed = await beside;
  if (failed !== undefined) throw failed.error;
}

/** The archived commands of these outcomes, as history. */
export const archivedBy = (outcomes: readonly StepOutcome[]): ExecutionHistory[] => outcomes.flatMap((o) => (o.archivedExecution ? [o.archivedExecution] : []));

/**
 * Everything but the token rows of outcomes whose fences matched, inside the caller's transaction. `historiesWritten`:
 * the caller wrote the archived commands' history rows itself (StepStore, beside the transaction on the Data API).
 */
export async function writeBatchRest(trx: Transaction<Database>, written: readonly StepOutcome[], deps: BatchWriteDeps, historiesWritten = false): Promise<void> {
  // A job whose last command ended: the instance's end deletes that command's row too, in the same statement.
  const endings = written.filter((o) => o.deleteInstanceTokens === true);
  const archivedAtEnd = new Map<number, number>();
  for (const o of endings) if (o.archivedExecution?.instanceId === o.instanceId) archivedAtEnd.set(o.instanceId, o.archivedExecution.executionId);
  const endedWithRow = new Set(archivedAtEnd.values());
  const archived = archivedBy(written);
  const queued = written.flatMap((o) => (o.newExecution ? [o.newExecution] : []));
  // A token whose finished command is archived and whose next one is queued here: the next command takes the old
  // row's place (its token_id), one upsert instead of a delete and an insert (issue 18: a Data API call on the
  // way from a command's exit to the next start). Safe under the chain's fence: only a step of this token writes
  // its command, so the row under its token_id is the archived one.
  const queuedTokens = new Set(queued.map((e) => e.tokenId));
  const replaced = new Set(archived.flatMap((a) => (queuedTokens.has(a.tokenId) && !endedWithRow.has(a.executionId) ? [a.tokenId] : [])));
  // Any other archived command's row goes before its token's next command is queued (one row per token).
  const deleted = archived.filter((a) => !endedWithRow.has(a.executionId) && !replaced.has(a.tokenId)).map((a) => a.executionId);
  for (const chunk of chunked(deleted)) await sql`${deleteKeyed(trx, 'executions', 'primary')} where ${sql.ref('id')} in (${sql.join(chunk)})`.execute(trx);
  if (!historiesWritten) await insertHistories(trx, archived);
  // Commands and forked tokens before any instance's end: written in the order of separate commits where the
  // other step came first, so an instance ended in this batch removes what its other tokens queued in it.
  await insertRows(trx, 'tokens', written.flatMap((o) => o.newTokens.map(fromToken)));
  await insertRows(trx, 'executions', queued.filter((e) => !replaced.has(e.tokenId)).map(fromExecution));
  await replaceExecutions(trx, queued.filter((e) => replaced.has(e.tokenId)).map(fromExecution));
  await patchInstances(trx, written);
  for (const chunk of chunked([...new Set(endings.map((o) => o.instanceId))])) {
    await endInstances(trx, chunk, chunk.flatMap((id) => archivedAtEnd.get(id) ?? []));
  }
  for (const outcome of written) {
    await requestKills(trx, deps.ids, deps.clock, outcome.kills);
    for (const launch of outcome.launches) await deps.launches.launchIn(trx, launch);
  }
  const logs = written.flatMap((o) => o.logs);
  for (const chunk of chunkByBytes(logs, (l) => utf8Bytes(l.message), RESPONSE_BUDGET_BYTES, ROWS_PER_INSERT)) await insertLogs(trx, deps.ids, chunk);
  const events = written.flatMap((o) => o.events);
  for (const chunk of chunkByBytes(events, (e) => utf8Bytes(e.message), RESPONSE_BUDGET_BYTES, ROWS_PER_INSERT)) await insertEvents(trx, chunk);
}

/**
 * Each instance's patches, in step order (a later one wins a column), in one statement per chunk of instances:
 * each column set through a CASE on the id, so instances patched with different times still share it.
 */
async function patchInstances(trx: Transaction<Database>, outcomes: readonly StepOutcome[]): Promise<void> {
  const patches = new Map<number, InstancePatch>();
  for (const o of outcomes) if (o.instancePatch && Object.keys(o.instancePatch).length > 0) patches.set(o.instanceId, { ...patches.get(o.instanceId), ...o.instancePatch });
  for (const chunk of chunked([...patches], ROWS_PER_INSERT)) {
    const column = (name: 'finished_at' | 'canceled_at' | 'error_at' | 'retrying', value: (p: InstancePatch) => unknown) => {
      const cases = chunk.flatMap(([id, p]) => (value(p) === undefined ? [] : [sql`when ${id} then ${value(p)}`]));
      return cases.length === 0 ? undefined : sql`case ${sql.ref('id')} ${sql.join(cases, sql` `)} else ${sql.ref(name)} end`;
    };
    const set = Object.fromEntries(
      (
        [
          ['finished_at', column('finished_at', (p) => p.finishedAt || undefined)],
          ['canceled_at', column('canceled_at', (p) => p.canceledAt || undefined)],
          ['error_at', column('error_at', (p) => p.errorAt)],
          ['retrying', column('retrying', (p) => p.retrying)],
        ] as const
      ).filter(([, value]) => value !== undefined),
    );
    // By the primary key (keyed-writes.ts): a scan of a small job_instances table would hold back every launch.
    const columns = sql.join(Object.entries(set).map(([name, value]) => sql`${sql.ref(name)} = ${value}`));
    await sql`${updateKeyed(trx, 'job_instances', 'primary')} set ${columns} where ${sql.ref('id')} in (${sql.join(chunk.map(([id]) => id))})`.execute(trx);
  }
}

/**
 * Removes every token of ended instances and the commands nobody claimed yet, and the archived ones by id in the same
 * statement (they all belong to these instances). Running commands are stopped by the outcome's kill requests.
 */
export async function endInstances(trx: Transaction<Database>, instanceIds: readonly number[], archivedExecutionIds: readonly number[]): Promise<void> {
  // Each by its job_instance_id index (keyed-writes.ts): a scan would lock every token or command in flight.
  const instances = sql`${sql.ref('job_instance_id')} in (${sql.join(instanceIds)})`;
  await sql`${deleteKeyed(trx, 'tokens', 'tokens_instance_idx')} where ${instances}`.execute(trx);
  const unclaimed =
    archivedExecutionIds.length === 0
      ? sql`${sql.ref('claimed_at')} is null`
      : sql`(${sql.ref('claimed_at')} is null or ${sql.ref('id')} in (${sql.join(archivedExecutionIds)}))`;
  await sql`${deleteKeyed(trx, 'executions', 'executions_instance_idx')} where ${instances} and ${unclaimed}`.execute(trx);
}

/** Marks each execution's kill request once and queues a TERM for the attempt that holds it. */
export async function requestKills(trx: Transaction<Database>, ids: IdGenerator, clock: Clock, kills: readonly KillRequest[]): Promise<void> {
  const now = clock.now();
  for (const kill of kills) {
    const marked = await trx
      .updateTable('executions')
      .set({ kill_requested_at: now })
      .where('id', '=', kill.executionId)
      .where('kill_requested_at', 'is', null)
      .where('finished_at', 'is', null)
      .executeTakeFirst();
    if (Number(marked.numUpdatedRows) === 0) continue;
    const execution = await trx.selectFrom('executions').select('attempt').where('id', '=', kill.executionId).executeTakeFirstOrThrow();
    await trx
      .insertInto('process_signals')
      .values({
        id: await ids.nextId(),
        execution_id: kill.executionId,
        attempt: Number(execution.attempt),
        signal: KILL_SIGNAL,
        reason: kill.reason,
        requested_at: now,
        delivered_at: null,
        result: null,
      })
      .execute();
  }
}
