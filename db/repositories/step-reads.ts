/** The step store's plain reads (db/repositories/step-store.ts): tokens, instances, definitions, executions. */
import { sql, type Kysely } from 'kysely';
import { TOKEN_STATUS, type Definition, type Execution, type Instance, type Token } from '../../core/model';
import { fromDbBool } from '../column-codec';
import type { Database, ExecutionRow, ExecutionTable, TokenRow } from '../schema';
import { DATA_API_MAX_ROW_BYTES } from '../../core/row-limits';
import { EXECUTION_WIDTH, NARROW_ROW_BYTES, RESPONSE_BUDGET_BYTES, TOKEN_WIDTH, chunkByBytes, chunked, readByWidth, readInChunks, rowWidths, scanWidths, widthOf, type RowWidth } from './paging';
import { toDefinition, toExecution, toInstance, toToken } from './row-mappers';

/** Every column of `executions`: read beside a token's under `e_<column>` (the pass's joined read), set by an upsert. */
export const EXECUTION_COLUMNS = [
  'id', 'uuid', 'token_id', 'job_instance_id', 'job_definition_id', 'queue', 'shell', 'env', 'created_at', 'attempt', 'worker_id',
  'hostname', 'lease_expires_at', 'claimed_at', 'pid', 'started_at', 'finished_at', 'exit_status', 'term_signal', 'output_head',
  'output_tail', 'kill_requested_at', 'lost_reason',
] as const satisfies readonly (keyof ExecutionTable)[];
/** Fails to compile when a migration adds a column to `executions` that the joined read would leave out. */
const EVERY_EXECUTION_COLUMN: Exclude<keyof ExecutionTable, (typeof EXECUTION_COLUMNS)[number]> extends never ? true : never = true;
void EVERY_EXECUTION_COLUMN;

/** The wide columns of a token and of its execution in the pass's join (tokens `t`, executions `e`). */
const JOINED_TOKEN_WIDTH = widthOf('t.script', 't.context', 't.message');
const JOINED_EXECUTION_WIDTH = widthOf('e.shell', 'e.env', 'e.output_head', 'e.output_tail');

/** A due token's id and the bytes its row and its execution's row may take (`bytes`: both, as one joined row). */
export interface DueWidth extends RowWidth {
  tokenBytes: number;
  executionBytes: number;
}

/** What a pass's listing found: the due tokens' widths (with their executions'), and what the orphan check needs. */
export interface DueListing {
  /** Due tokens, those whose command ended first. */
  widths: DueWidth[];
  /** The listing of ended commands was full: more may wait, orphans among them. */
  endedFull: boolean;
  /** Tokens of the ended commands listed, found or not. */
  endedTokenIds: number[];
  /** How many of those tokens exist (fewer: an ended command's token is gone, an orphan). */
  endedFound: number;
}

/** A due token as the pass's joined read found it, with its execution (if any) read in the same statement. */
export interface DueToken {
  token: Token;
  execution: Execution | undefined;
}

interface InstanceBatch {
  ids: readonly number[];
  cache: Map<number, Instance | undefined>;
  /** Instances this store wrote during the batch. */
  written: Set<number>;
  loading?: Promise<void>;
}

/** The columns of executions `e` joined to tokens `t`, as `e_<column>` (read back by dueTokenOf). */
const joinedExecutionColumns = () => EXECUTION_COLUMNS.map((c) => sql.ref(`e.${c}`).as(`e_${c}`));

/** A row of tokens `t` joined with executions `e` (columns `e_<column>`), as a token and its execution. */
function dueTokenOf(row: object): DueToken {
  const joined = row as Record<string, unknown>;
  const execution = joined.e_id === null || joined.e_id === undefined ? undefined : toExecution(Object.fromEntries(EXECUTION_COLUMNS.map((c) => [c, joined[`e_${c}`]])) as unknown as ExecutionRow);
  return { token: toToken(row as TokenRow), execution };
}

export class StepReads {
  constructor(protected readonly db: Kysely<Database>) {}

  /** Finished executions `e`, each with its token `t` (null columns when the token is gone) and its own columns as `e_<column>`. */
  private endedJoined() {
    return this.db
      .selectFrom('executions as e')
      .leftJoin('tokens as t', 't.id', 'e.token_id')
      .selectAll('t')
      .select(joinedExecutionColumns())
      .where('e.finished_at', 'is not', null);
  }

  /** Tokens `t`, each with its execution `e` joined (columns `e_<column>`, read back by dueTokenOf). */
  private tokensJoined() {
    return this.db.selectFrom('tokens as t').leftJoin('executions as e', 'e.token_id', 't.id').selectAll('t').select(joinedExecutionColumns());
  }

  /** Up to `limit` working or waiting tokens with ids above `afterId`, in id order (a full scan, for tools and tests). */
  async listProcessableTokens(afterId: number, limit: number): Promise<Token[]> {
    // Ids and widths first, then the rows in chunks that fit a Data API response at any token size.
    const widths = rowWidths(
      await this.db
        .selectFrom('tokens')
        .select(['id', TOKEN_WIDTH.as('wide')])
        .where('status', 'in', [TOKEN_STATUS.working, TOKEN_STATUS.waiting])
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute())).map(toToken);
  }

  /**
   * The due tokens' ids and widths in one statement (issue 18: three before, each a Data API call on the way from a
   * command's end to the next command): the tokens of ended commands (executions_finished_idx) and those whose wake
   * time has come (tokens_wake_idx), up to `limit` of each, with the width of each token's execution.
   */
  async listDueWidths(limit: number, now: Date): Promise<DueListing> {
    const ended = this.db
      .selectFrom('executions as e')
      .leftJoin('tokens as t', 't.id', 'e.token_id')
      .select(['e.token_id as token_id', 't.id as found_id', JOINED_TOKEN_WIDTH.as('wide'), JOINED_EXECUTION_WIDTH.as('execution_wide'), sql<number>`1`.as('ended'), 'e.finished_at as due_at'])
      .where('e.finished_at', 'is not', null)
      .orderBy('e.finished_at')
      .limit(limit);
    const woken = this.db
      .selectFrom('tokens as t')
      .leftJoin('executions as e', 'e.token_id', 't.id')
      .select(['t.id as token_id', 't.id as found_id', JOINED_TOKEN_WIDTH.as('wide'), JOINED_EXECUTION_WIDTH.as('execution_wide'), sql<number>`0`.as('ended'), 't.wake_at as due_at'])
      .where('t.wake_at', '<=', now)
      .orderBy('t.wake_at')
      .limit(limit);
    const rows = await this.db
      .selectFrom(ended.as('ended'))
      .selectAll()
      .unionAll(this.db.selectFrom(woken.as('woken')).selectAll())
      .orderBy('ended', 'desc')
      .orderBy('due_at')
      .execute();
    const endedRows = rows.filter((row) => Number(row.ended) === 1);
    const endedTokenIds = [...new Set(endedRows.map((row) => Number(row.token_id)))];
    const found = new Set(endedRows.flatMap((row) => (row.found_id === null ? [] : [Number(row.found_id)])));
    const widths: DueWidth[] = [];
    const seen = new Set<number>();
    for (const row of rows) {
      if (row.found_id === null || widths.length >= limit) continue;
      const id = Number(row.found_id);
      if (seen.has(id)) continue;
      seen.add(id);
      const tokenBytes = Number(row.wide ?? 0) + NARROW_ROW_BYTES;
      const executionBytes = Number(row.execution_wide ?? 0) + NARROW_ROW_BYTES;
      widths.push({ id, bytes: tokenBytes + executionBytes, tokenBytes, executionBytes });
    }
    return { widths, endedFull: endedRows.length >= limit, endedTokenIds, endedFound: found.size };
  }

  /**
   * The listed tokens with their executions, in one statement per response's worth (usually one): a token and its
   * execution read together are one snapshot, so a pass never sees a token newer than what it knows of its command.
   * A pair that could pass the Data API's 64 KB per row as one row (the widest script, env and output) is read as
   * two: the token first, then its execution by token, which is then at least as new.
   */
  async readDueTokens(widths: readonly DueWidth[]): Promise<DueToken[]> {
    const joinable = widths.filter((w) => w.bytes <= DATA_API_MAX_ROW_BYTES);
    const apart = widths.filter((w) => w.bytes > DATA_API_MAX_ROW_BYTES);
    const rows = await readByWidth(joinable, (ids) =>
      this.tokensJoined()
        .where('t.id', 'in', ids)
        .execute(),
    );
    const found = new Map<number, DueToken>();
    for (const row of rows) found.set(Number(row.id), dueTokenOf(row));
    if (apart.length > 0) {
      const tokens = await readByWidth(
        apart.map((w) => ({ id: w.id, bytes: w.tokenBytes })),
        (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute(),
      );
      for (const row of tokens) found.set(Number(row.id), { token: toToken(row), execution: undefined });
      for (const chunk of chunkByBytes(apart, (w) => w.executionBytes, RESPONSE_BUDGET_BYTES)) {
        const executions = await this.db.selectFrom('executions').selectAll().where('token_id', 'in', chunk.map((w) => w.id)).execute();
        for (const row of executions) {
          const due = found.get(Number(row.token_id));
          if (due) due.execution = toExecution(row);
        }
      }
    }
    return widths.flatMap((w) => {
      const due = found.get(w.id);
      return due === undefined ? [] : [due];
    });
  }

  /** The read hintFinished started, for the next listDueTokens. */
  private hinted: Promise<DueToken[]> | undefined;

  /**
   * Starts reading the tokens of these finished commands now (readFinished), for the next listDueTokens to take as
   * its batch instead of listing: the processor function reads a nudge's hints beside its lease. Any earlier hint
   * not taken is dropped; a read that fails leaves the listing to find the work.
   */
  hintFinished(executionIds: readonly number[]): void {
    this.hinted = this.readFinished(executionIds).catch(() => []);
  }

  /** Forgets a hint not taken (its read is stale once the invocation that started it ends). */
  dropHint(): void {
    this.hinted = undefined;
  }

  /** What the hinted read found (at most `limit`), once; none without a hint. */
  protected async takeHinted(limit: number): Promise<DueToken[]> {
    const hinted = this.hinted;
    this.hinted = undefined;
    return hinted === undefined ? [] : (await hinted).slice(0, limit);
  }

  /**
   * Where responses are unbounded (MySQL, SQLite): up to `limit` due tokens with their executions, in two statements.
   * The ended commands joined to their tokens (by executions_finished_idx; a row without a token is an orphan's),
   * then the tokens due by time (tokens_wake_idx) joined to theirs. Issue 18: the executions' own read is gone.
   */
  async listDueJoined(limit: number, now: Date): Promise<Omit<DueListing, 'widths'> & { due: DueToken[] }> {
    const ended = await this.endedJoined()
      .orderBy('e.finished_at')
      .limit(limit)
      .execute();
    const due = ended.filter((row) => row.id !== null).map(dueTokenOf);
    const endedFound = due.length;
    if (due.length < limit) {
      const seen = new Set(due.map((d) => d.token.id));
      const woken = await this.tokensJoined()
        .where('t.wake_at', '<=', now)
        .orderBy('t.wake_at')
        .limit(limit - due.length)
        .execute();
      due.push(...woken.map(dueTokenOf).filter((d) => !seen.has(d.token.id)));
    }
    return { due, endedFull: ended.length >= limit, endedTokenIds: ended.map((row) => Number(row.e_token_id)), endedFound };
  }

  /**
   * The tokens of these finished commands, each with its command, read as readDueTokens reads them (one snapshot) in
   * one statement: a nudge's hints, read beside the processor's lease (issue 18: AWS W1 spent two serial calls on
   * the lease and the listing before this read). A command not ended, or gone, or whose pair is too wide for its
   * share of one response is left out: the pass's listing finds it.
   */
  async readFinished(executionIds: readonly number[]): Promise<DueToken[]> {
    if (executionIds.length === 0) return [];
    const maxPairBytes = Math.min(DATA_API_MAX_ROW_BYTES, Math.floor(RESPONSE_BUDGET_BYTES / executionIds.length)) - 2 * NARROW_ROW_BYTES;
    const rows = await this.endedJoined()
      .where('e.id', 'in', executionIds)
      .where(sql<number>`${JOINED_TOKEN_WIDTH} + ${JOINED_EXECUTION_WIDTH}`, '<=', maxPairBytes)
      .orderBy('e.finished_at')
      .execute();
    // A command whose token is gone is an orphan's: the listing archives it.
    return rows.filter((row) => row.id !== null).map(dueTokenOf);
  }

  /**
   * The instances of a pass's batch of tokens: the first step that reads one reads all of them in one statement
   * (a busy pass finishes hundreds of instances, each read on its own before; issue 18). Undefined outside a batch.
   */
  private instanceBatch: InstanceBatch | undefined;

  /** Reads of these instances are gathered until endInstanceBatch(). */
  protected startInstanceBatch(instanceIds: readonly number[]): void {
    this.instanceBatch = { ids: [...new Set(instanceIds)], cache: new Map(), written: new Set() };
  }

  protected endInstanceBatch(): void {
    this.instanceBatch = undefined;
  }

  /** An instance this store just wrote is read again from the database. */
  protected forgetInstance(instanceId: number): void {
    this.instanceBatch?.cache.delete(instanceId);
    this.instanceBatch?.written.add(instanceId);
  }

  async findInstance(instanceId: number): Promise<Instance | undefined> {
    const batch = this.instanceBatch;
    if (batch === undefined) {
      const row = await this.db.selectFrom('job_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
      return row ? toInstance(row) : undefined;
    }
    // Steps run side by side: the first miss reads the batch's instances, the others wait for that read.
    if (!batch.cache.has(instanceId)) {
      batch.loading ??= this.loadInstances(batch, batch.ids.includes(instanceId) ? batch.ids : [instanceId, ...batch.ids]);
      await batch.loading;
    }
    // One this store wrote since (forgetInstance) is read again on its own.
    if (!batch.cache.has(instanceId)) await this.loadInstances(batch, [instanceId], true);
    return batch.cache.get(instanceId);
  }

  /** Caches what it reads, except (unless `fresh`) instances written since: the read may have begun before. */
  private async loadInstances(batch: InstanceBatch, ids: readonly number[], fresh = false): Promise<void> {
    const rows = await readInChunks(ids, (chunk) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', chunk).execute());
    const found = new Map(rows.map((row) => [Number(row.id), toInstance(row)] as const));
    for (const id of ids) if (!batch.cache.has(id) && (fresh || !batch.written.has(id))) batch.cache.set(id, found.get(id));
  }

  async findDefinition(definitionId: number): Promise<Definition | undefined> {
    const row = await this.db.selectFrom('job_definitions').selectAll().where('id', '=', definitionId).executeTakeFirst();
    return row ? toDefinition(row) : undefined;
  }

  async findToken(tokenId: number): Promise<Token | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', tokenId).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async findTokens(tokenIds: readonly number[]): Promise<Token[]> {
    const rows = await readInChunks(tokenIds, async (chunk) => {
      const widths = rowWidths(await this.db.selectFrom('tokens').select(['id', TOKEN_WIDTH.as('wide')]).where('id', 'in', chunk).execute());
      return readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute());
    });
    return rows.map(toToken);
  }

  async findTokensByInstance(instanceId: number): Promise<Token[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.db
        .selectFrom('tokens')
        .select(['id', TOKEN_WIDTH.as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute())).map(toToken);
  }

  async findExecutionsByInstance(instanceId: number): Promise<Execution[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.db
        .selectFrom('executions')
        .select(['id', EXECUTION_WIDTH.as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('executions').selectAll().where('id', 'in', ids).execute())).map(toExecution);
  }

  /**
   * Whether tokens wait for these instances (sub process parents) and whether any `wait:` token waits at all: one
   * read of two index probes (tokens_waits_on_idx, tokens_status_idx), so the wakes that find nobody are never
   * written. Most ended instances have no waiter, and each wake was an autocommitted UPDATE (a Data API call).
   */
  async waitersOf(instanceIds: readonly number[]): Promise<{ parents: boolean; waiting: boolean }> {
    const row = await this.db
      .selectNoFrom((eb) => [
        eb.exists(eb.selectFrom('tokens').select('id').where((w) => w.or(chunked(instanceIds).map((chunk) => w('waits_on_instance_id', 'in', chunk))))).as('parents'),
        eb.exists(eb.selectFrom('tokens').select('id').where('status', '=', TOKEN_STATUS.waiting)).as('waiting'),
      ])
      .executeTakeFirstOrThrow();
    return { parents: fromDbBool(row.parents as boolean | number | string), waiting: fromDbBool(row.waiting as boolean | number | string) };
  }

  async findFinishedInstanceCreatedBetween(definitionId: number, from: Date, to: Date): Promise<Instance | undefined> {
    const row = await this.db
      .selectFrom('job_instances')
      .selectAll()
      .where('job_definition_id', '=', definitionId)
      .where('finished_at', 'is not', null)
      .where('created_at', '>=', from)
      .where('created_at', '<=', to)
      .orderBy('id')
      .executeTakeFirst();
    return row ? toInstance(row) : undefined;
  }
}
