/**
 * Job definitions with their tags, cron schedules, suspend schedules and script revisions. Every write validates
 * the whole resulting definition first (core/definitions/definition-rules.ts) and then writes all of its rows in one
 * transaction, so a rejected or failed request changes nothing (invariant 6).
 */
import type { Kysely, Transaction } from 'kysely';
import type { ValidationContext } from '../../core/dsl/script-validator';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors';
import type { PreventMulti } from '../../core/model';
import type { Clock, IdGenerator } from '../../core/ports';
import {
  describeProblems,
  normalizeTags,
  stateForCreate,
  stateForUpdate,
  validateDefinitionState,
  type DefinitionInput,
  type DefinitionRecord,
  type DefinitionState,
} from '../../core/definitions/definition-rules';
import { fromDbInt } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';
import { RESPONSE_BUDGET_BYTES, chunkByBytes, widthOf } from './paging';
import { definitionRecords } from './definition-records';
import { withTransaction } from './transaction';

// The rules and the list readers moved out of this file; what its callers imported from here still resolves.

export interface DefinitionRepositoryOptions {
  /** `SELECT ... FOR UPDATE` takes row locks (see DatabaseCapabilities.rowLocks). */
  rowLocks: boolean;
  /** What scripts are checked against (known queues, existing definitions): D14. */
  validationContext: () => Promise<ValidationContext>;
}

/** Ids and widths read per statement when listing definitions (two numbers a row). */
const DEFINITION_WIDTH_PAGE = 2000;
/** Every text column of a definition row; the rest (numbers, flags, times) is within DEFINITION_NARROW_BYTES. */
const DEFINITION_LIST_WIDTH = widthOf('description', 'script', 'name', 'slack_channel', 'webhook_url', 'time_zone');
/** A definition row's numbers, flags and times, and the JSON field wrappers of the Data API's answer around them. */
const DEFINITION_NARROW_BYTES = 512;

/**
 * More rows to write in the same transaction as a definition change (the console's admin list), so the two are
 * saved, or not, together. Called again if the transaction is retried.
 */
export type AlsoWrite = (trx: Transaction<Database>, definitionId: number) => Promise<void>;

/** Reads and writes job definitions. */
export class DefinitionRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly options: DefinitionRepositoryOptions,
  ) {}

  /**
   * Definitions ordered by id; with tags, only those having every one of them; a page when given limit and afterId.
   * However many there are, each statement stays within the Data API's limits: the ids and widths are read first,
   * a page at a time, and the rows then in chunks whose widths add up to less than RESPONSE_BUDGET_BYTES.
   */
  async list(tags: readonly string[] = [], page: { limit?: number; afterId?: number } = {}): Promise<DefinitionRecord[]> {
    const wanted = normalizeTags(tags).filter((t) => t !== '');
    const widths: { id: number; bytes: number }[] = [];
    let afterId = page.afterId ?? 0;
    for (;;) {
      const left = page.limit === undefined ? DEFINITION_WIDTH_PAGE : Math.min(DEFINITION_WIDTH_PAGE, page.limit - widths.length);
      if (left <= 0) break;
      let query = this.db
        .selectFrom('job_definitions')
        .select(['id', DEFINITION_LIST_WIDTH.as('wide')])
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(left);
      if (wanted.length > 0) {
        // A subquery rather than an IN list of every match: the SQL text stays short however many match.
        query = query.where('id', 'in', (eb) =>
          eb
            .selectFrom('job_definition_tags')
            .innerJoin('tags', 'tags.id', 'job_definition_tags.tag_id')
            .select('job_definition_tags.job_definition_id')
            .where('tags.name', 'in', wanted)
            .groupBy('job_definition_tags.job_definition_id')
            .having((h) => h.fn.count('tags.id').distinct(), '=', wanted.length),
        );
      }
      const rows = await query.execute();
      for (const row of rows) widths.push({ id: fromDbInt(row.id), bytes: Number(row.wide) + DEFINITION_NARROW_BYTES });
      if (rows.length < left) break;
      afterId = widths[widths.length - 1]?.id ?? afterId;
    }
    const records: DefinitionRecord[] = [];
    for (const chunk of chunkByBytes(widths, (w) => w.bytes, RESPONSE_BUDGET_BYTES)) {
      const rows = await this.db
        .selectFrom('job_definitions')
        .selectAll()
        .where('id', 'in', chunk.map((w) => w.id))
        .orderBy('id')
        .execute();
      records.push(...(await definitionRecords(this.db, rows)));
    }
    return records;
  }

  /** The definition, or undefined. */
  async find(id: number): Promise<DefinitionRecord | undefined> {
    const row = await this.db.selectFrom('job_definitions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const [record] = await definitionRecords(this.db, [row]);
    return record;
  }

  /** The definition, or NotFoundError. */
  async get(id: number): Promise<DefinitionRecord> {
    const record = await this.find(id);
    if (!record) throw new NotFoundError('job definition', id);
    return record;
  }

  /** Validates and creates a definition with its lists and first script revision; ValidationError lists every problem. */
  async create(input: DefinitionInput, changedBy: string, alsoWrite?: AlsoWrite): Promise<DefinitionRecord> {
    const state = stateForCreate(input);
    await this.assertValid(state, true);
    const now = this.clock.now();
    const id = await this.ids.nextId();
    await this.retryOnTagRace(() =>
      withTransaction(this.db, this.ids, this.idsFor(state), async (trx) => {
        await trx
          .insertInto('job_definitions')
          .values({ id, ...this.columnsOf(state), name: state.name.trim(), version: 0, created_at: now, updated_at: now })
          .execute();
        await this.replaceTags(trx, id, state.tags, now);
        await this.replaceSchedules(trx, 'job_schedules', id, state.crons, now);
        await this.replaceSchedules(trx, 'job_suspend_schedules', id, state.suspendCrons, now);
        await this.recordRevision(trx, id, state.script, changedBy, now);
        await alsoWrite?.(trx, id);
      }),
    );
    return this.get(id);
  }

  /**
   * Validates and applies a change; `tags`, `crons` and `suspendCrons` replace their lists when present. Fenced on
   * the version read, so a concurrent edit makes this one fail with ConflictError instead of being overwritten.
   */
  async update(id: number, input: DefinitionInput, changedBy: string, alsoWrite?: AlsoWrite): Promise<DefinitionRecord> {
    const current = await this.get(id);
    const state = stateForUpdate(current, input);
    const scriptChanged = state.script !== current.script;
    await this.assertValid(state, scriptChanged);
    const now = this.clock.now();
    await this.retryOnTagRace(() =>
      withTransaction(this.db, this.ids, this.idsFor(state), async (trx) => {
        const result = await trx
          .updateTable('job_definitions')
          .set({ ...this.columnsOf(state), name: state.name.trim(), version: current.version + 1, updated_at: now })
          .where('id', '=', id)
          .where('version', '=', current.version)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) {
          throw new ConflictError(`job definition ${id} was changed or deleted by someone else; reload it and try again`);
        }
        if (input.tags) await this.replaceTags(trx, id, state.tags, now);
        if (input.crons) await this.replaceSchedules(trx, 'job_schedules', id, state.crons, now);
        if (input.suspendCrons) await this.replaceSchedules(trx, 'job_suspend_schedules', id, state.suspendCrons, now);
        if (scriptChanged) await this.recordRevision(trx, id, state.script, changedBy, now);
        await alsoWrite?.(trx, id);
      }),
    );
    return this.get(id);
  }

  /**
   * Deletes a definition with its tags links, schedules and revisions; ConflictError while any instance of it
   * still has tokens (working, waiting or failed and retryable). Instances and their logs stay as history.
   */
  async delete(id: number, alsoWrite?: AlsoWrite): Promise<void> {
    await withTransaction(this.db, this.ids, 0, async (trx) => {
      // The lock orders this delete against a concurrent launch, which locks the same row before it writes.
      let lookup = trx.selectFrom('job_definitions').select('id').where('id', '=', id);
      if (this.options.rowLocks) lookup = lookup.forUpdate();
      if (!(await lookup.executeTakeFirst())) throw new NotFoundError('job definition', id);
      const busy = await trx.selectFrom('tokens').select('id').where('job_definition_id', '=', id).limit(1).executeTakeFirst();
      if (busy) throw new ConflictError(`job definition ${id} has an instance in progress; cancel it before deleting the definition`);
      await trx.deleteFrom('job_definition_tags').where('job_definition_id', '=', id).execute();
      await trx.deleteFrom('job_schedules').where('job_definition_id', '=', id).execute();
      await trx.deleteFrom('job_suspend_schedules').where('job_definition_id', '=', id).execute();
      await trx.deleteFrom('script_revisions').where('job_definition_id', '=', id).execute();
      await trx.deleteFrom('job_definitions').where('id', '=', id).execute();
      await alsoWrite?.(trx, id);
    });
  }

  private async assertValid(state: DefinitionState, checkScript: boolean): Promise<void> {
    const context = checkScript ? await this.options.validationContext() : {};
    const problems = validateDefinitionState(state, context, checkScript);
    if (problems.length > 0) throw new ValidationError(describeProblems(problems), problems);
  }

  private idsFor(state: DefinitionState): number {
    // Tags, both schedule lists and one revision.
    return state.tags.length + state.crons.length + state.suspendCrons.length + 1;
  }

  private columnsOf(state: DefinitionState) {
    return {
      description: state.description,
      script: state.script,
      time_zone: state.timeZone,
      suspended: state.suspended,
      prevent_multi: state.preventMulti as PreventMulti,
      notify_cancellation: state.notifyCancellation,
      notify_all: state.notifyAll,
      api_allowed: state.apiAllowed,
      slack_channel: state.slackChannel,
      webhook_url: state.webhookUrl === '' ? null : state.webhookUrl,
      catch_up_window_minutes: state.catchUpWindowMinutes,
      retention_days: state.retentionDays ?? null,
    };
  }

  /** Two requests creating the same new tag race on its unique name; the loser runs its transaction once more. */
  private async retryOnTagRace<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      return fn();
    }
  }

  private async replaceTags(trx: Transaction<Database>, definitionId: number, names: readonly string[], now: Date): Promise<void> {
    await trx.deleteFrom('job_definition_tags').where('job_definition_id', '=', definitionId).execute();
    if (names.length === 0) return;
    const existing = await trx.selectFrom('tags').select(['id', 'name']).where('name', 'in', names).execute();
    const idByName = new Map(existing.map((t) => [t.name, fromDbInt(t.id)]));
    const missing = names.filter((n) => !idByName.has(n));
    if (missing.length > 0) {
      const rows = [];
      for (const name of missing) {
        const id = await this.ids.nextId();
        idByName.set(name, id);
        rows.push({ id, name, created_at: now });
      }
      await trx.insertInto('tags').values(rows).execute();
    }
    await trx
      .insertInto('job_definition_tags')
      .values(names.map((name) => ({ job_definition_id: definitionId, tag_id: idByName.get(name) ?? 0 })))
      .execute();
  }

  private async replaceSchedules(
    trx: Transaction<Database>,
    table: 'job_schedules' | 'job_suspend_schedules',
    definitionId: number,
    crons: readonly string[],
    now: Date,
  ): Promise<void> {
    await trx.deleteFrom(table).where('job_definition_id', '=', definitionId).execute();
    if (crons.length === 0) return;
    const rows = [];
    for (const cron of crons) rows.push({ id: await this.ids.nextId(), job_definition_id: definitionId, cron, created_at: now });
    await trx.insertInto(table).values(rows).execute();
  }

  private async recordRevision(trx: Transaction<Database>, definitionId: number, script: string, changedBy: string, now: Date): Promise<void> {
    await trx
      .insertInto('script_revisions')
      .values({ id: await this.ids.nextId(), job_definition_id: definitionId, script, changed_by: changedBy, changed_at: now })
      .execute();
  }
}

