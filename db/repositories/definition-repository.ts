/**
 * Job definitions with their tags, cron schedules, suspend schedules and script revisions. Every write validates
 * the whole resulting definition first and then writes all of its rows in one transaction, so a rejected or
 * failed request changes nothing (invariant 6).
 */
import type { Kysely, Transaction } from 'kysely';
import type { ValidationContext } from '../../core/dsl/script-validator';
import { validateScript } from '../../core/dsl/script-validator';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors';
import type { FieldProblem } from '../../core/errors';
import { MAX_RETENTION_DAYS } from '../../core/services/retention-service';
import { PREVENT_MULTI } from '../../core/model';
import type { Definition, PreventMulti } from '../../core/model';
import type { Clock, IdGenerator } from '../../core/ports';
import type { CronExpression } from '../../core/schedule';
import { isValidTimeZone, parseCron, validateSuspendSchedules } from '../../core/schedule';
import { ROW_LIMITS, tooManyBytes, utf8Bytes } from '../../core/row-limits';
import { fromDbInt } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database, JobDefinitionRow } from '../schema';
import { LIST_PAGE_ROWS, RESPONSE_BUDGET_BYTES, chunkByBytes, chunked, widthOf } from './paging';
import { toDefinition } from './row-mappers';
import { withTransaction } from './transaction';

/** Bounds that keep every value inside its column and every request cheap to validate. */
export const DEFINITION_LIMITS = {
  nameLength: 180,
  /** UTF-8 bytes, not characters: the row must fit the Data API's 64 KB (core/row-limits.ts). */
  descriptionBytes: ROW_LIMITS.descriptionBytes,
  /** UTF-8 bytes of the script. */
  scriptBytes: ROW_LIMITS.scriptBytes,
  tags: 50,
  tagLength: 100,
  crons: 50,
  cronLength: 180,
  slackChannelLength: 81,
  webhookUrlLength: 2048,
  timeZoneLength: 64,
  /** A week: a longer catch-up would launch long-forgotten slots after an outage. */
  catchUpWindowMinutes: 10_080,
  /** A hundred years (retention, migration 0008). */
  retentionDays: MAX_RETENTION_DAYS,
} as const;

/** Kuroko2's column defaults (section 2 of the reference), plus ours for the extensions. */
export const DEFINITION_DEFAULTS = {
  description: '',
  timeZone: 'UTC',
  suspended: false,
  preventMulti: PREVENT_MULTI.workingOrError,
  notifyCancellation: true,
  notifyAll: true,
  apiAllowed: false,
  slackChannel: '',
  webhookUrl: null,
  catchUpWindowMinutes: 60,
} as const;

/** A definition with the lists that belong to it. */
export interface DefinitionRecord extends Definition {
  version: number;
  tags: string[];
  crons: string[];
  suspendCrons: string[];
}

/** The writable fields; absent means "the default" on create and "unchanged" on update. */
export interface DefinitionInput {
  name?: string;
  description?: string;
  script?: string;
  timeZone?: string;
  suspended?: boolean;
  preventMulti?: number;
  notifyCancellation?: boolean;
  notifyAll?: boolean;
  apiAllowed?: boolean;
  slackChannel?: string;
  webhookUrl?: string | null;
  catchUpWindowMinutes?: number;
  /** null: the global retention policy; 0: keep forever. */
  retentionDays?: number | null;
  tags?: string[];
  crons?: string[];
  suspendCrons?: string[];
}

/** Everything a definition will hold once written, before validation. */
type DefinitionState = Required<Omit<DefinitionInput, 'preventMulti' | 'retentionDays'>> & { preventMulti: number; retentionDays?: number | null };

export interface DefinitionRepositoryOptions {
  /** `SELECT ... FOR UPDATE` takes row locks (see DatabaseCapabilities.rowLocks). */
  rowLocks: boolean;
  /** What scripts are checked against (known queues, existing definitions): D14. */
  validationContext: () => Promise<ValidationContext>;
}

const SLACK_CHANNEL = /^\S*$/;
const VALID_PREVENT_MULTI: ReadonlySet<number> = new Set(Object.values(PREVENT_MULTI));

function uniqueStrings(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function normalizeTags(tags: readonly string[]): string[] {
  return uniqueStrings(tags.map((t) => t.trim()));
}

function cronProblems(field: 'cron' | 'suspend_cron', crons: readonly string[]): { problems: FieldProblem[]; parsed: CronExpression[] } {
  const problems: FieldProblem[] = [];
  const parsed: CronExpression[] = [];
  if (crons.length > DEFINITION_LIMITS.crons) problems.push({ field, message: `has ${crons.length} expressions; at most ${DEFINITION_LIMITS.crons} are allowed` });
  for (const expr of crons) {
    if (expr.length > DEFINITION_LIMITS.cronLength) {
      problems.push({ field, message: `an expression is longer than ${DEFINITION_LIMITS.cronLength} characters` });
      continue;
    }
    const result = parseCron(expr);
    if (result.ok) parsed.push(result.cron);
    else problems.push({ field, message: result.message });
  }
  return { problems, parsed };
}

function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const protocol = new URL(text).protocol;
  return protocol === 'http:' || protocol === 'https:';
}

/**
 * Every problem of a definition about to be written, empty when it may be saved. The script is checked only when
 * `checkScript` is set (it changed): an unchanged script was valid when saved, and a queue whose on-demand workers
 * are all stopped must not make an unrelated edit fail.
 */
export function validateDefinitionState(state: DefinitionState, context: ValidationContext, checkScript: boolean): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const name = state.name.trim();
  if (name === '') problems.push({ field: 'name', message: "can't be blank" });
  else if (name.length > DEFINITION_LIMITS.nameLength) problems.push({ field: 'name', message: `is too long (maximum is ${DEFINITION_LIMITS.nameLength} characters)` });
  const descriptionBytes = utf8Bytes(state.description);
  if (descriptionBytes > DEFINITION_LIMITS.descriptionBytes) {
    problems.push({ field: 'description', message: tooManyBytes(descriptionBytes, DEFINITION_LIMITS.descriptionBytes) });
  }
  if (state.script.trim() === '') problems.push({ field: 'script', message: "can't be blank" });
  else if (checkScript) {
    const scriptBytes = utf8Bytes(state.script);
    if (scriptBytes > DEFINITION_LIMITS.scriptBytes) problems.push({ field: 'script', message: tooManyBytes(scriptBytes, DEFINITION_LIMITS.scriptBytes) });
    for (const p of validateScript(state.script, context)) problems.push({ field: 'script', line: p.line, column: p.column, message: p.message });
  }
  if (!VALID_PREVENT_MULTI.has(state.preventMulti)) problems.push({ field: 'prevent_multi', message: `must be 0, 1, 2 or 3, not ${state.preventMulti}` });
  if (state.timeZone.length > DEFINITION_LIMITS.timeZoneLength || !isValidTimeZone(state.timeZone)) {
    problems.push({ field: 'time_zone', message: `\`${state.timeZone.slice(0, DEFINITION_LIMITS.timeZoneLength)}\` is not an IANA time zone` });
  }
  if (state.slackChannel.length > DEFINITION_LIMITS.slackChannelLength || !SLACK_CHANNEL.test(state.slackChannel)) {
    problems.push({ field: 'slack_channel', message: `must be a channel name without spaces, at most ${DEFINITION_LIMITS.slackChannelLength} characters` });
  }
  if (state.webhookUrl !== null && state.webhookUrl !== '') {
    if (state.webhookUrl.length > DEFINITION_LIMITS.webhookUrlLength || !isHttpUrl(state.webhookUrl)) {
      problems.push({ field: 'webhook_url', message: 'must be an http or https URL' });
    }
  }
  const window = state.catchUpWindowMinutes;
  if (!Number.isInteger(window) || window < 0 || window > DEFINITION_LIMITS.catchUpWindowMinutes) {
    problems.push({ field: 'catch_up_window_minutes', message: `must be an integer from 0 to ${DEFINITION_LIMITS.catchUpWindowMinutes}` });
  }
  const retention = state.retentionDays ?? null;
  if (retention !== null && (!Number.isInteger(retention) || retention < 0 || retention > DEFINITION_LIMITS.retentionDays)) {
    problems.push({ field: 'retention_days', message: `must be empty (the global policy) or an integer from 0 (keep forever) to ${DEFINITION_LIMITS.retentionDays}` });
  }
  if (state.tags.length > DEFINITION_LIMITS.tags) problems.push({ field: 'tags', message: `has ${state.tags.length} tags; at most ${DEFINITION_LIMITS.tags} are allowed` });
  for (const tag of state.tags) {
    if (tag === '') problems.push({ field: 'tags', message: "a tag can't be blank" });
    else if (tag.length > DEFINITION_LIMITS.tagLength) problems.push({ field: 'tags', message: `a tag is longer than ${DEFINITION_LIMITS.tagLength} characters` });
  }
  const launch = cronProblems('cron', state.crons);
  const suspend = cronProblems('suspend_cron', state.suspendCrons);
  problems.push(...launch.problems, ...suspend.problems);
  if (launch.problems.length === 0 && suspend.problems.length === 0) {
    for (const message of validateSuspendSchedules(launch.parsed, suspend.parsed)) problems.push({ field: 'suspend_cron', message });
  }
  return problems;
}

/** One line naming every problem, for the error's message. */
export function describeProblems(problems: readonly FieldProblem[]): string {
  return problems
    .map((p) => (p.line !== undefined ? `${p.field}: line ${p.line}, column ${p.column ?? 0}: ${p.message}` : `${p.field}: ${p.message}`))
    .join('; ');
}

/** Stores normalised cron text, so `0  * * * *` and `0 * * * *` are one schedule (a unique key). */
function normalizeCrons(crons: readonly string[]): string[] {
  return uniqueStrings(crons.map((c) => c.trim().split(/\s+/).join(' ')));
}

type Db = Kysely<Database> | Transaction<Database>;

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
    const state: DefinitionState = {
      name: input.name ?? '',
      description: input.description ?? DEFINITION_DEFAULTS.description,
      script: input.script ?? '',
      timeZone: input.timeZone ?? DEFINITION_DEFAULTS.timeZone,
      suspended: input.suspended ?? DEFINITION_DEFAULTS.suspended,
      preventMulti: input.preventMulti ?? DEFINITION_DEFAULTS.preventMulti,
      notifyCancellation: input.notifyCancellation ?? DEFINITION_DEFAULTS.notifyCancellation,
      notifyAll: input.notifyAll ?? DEFINITION_DEFAULTS.notifyAll,
      apiAllowed: input.apiAllowed ?? DEFINITION_DEFAULTS.apiAllowed,
      slackChannel: input.slackChannel ?? DEFINITION_DEFAULTS.slackChannel,
      webhookUrl: input.webhookUrl ?? DEFINITION_DEFAULTS.webhookUrl,
      catchUpWindowMinutes: input.catchUpWindowMinutes ?? DEFINITION_DEFAULTS.catchUpWindowMinutes,
      retentionDays: input.retentionDays ?? null,
      tags: normalizeTags(input.tags ?? []),
      crons: normalizeCrons(input.crons ?? []),
      suspendCrons: normalizeCrons(input.suspendCrons ?? []),
    };
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
    const state: DefinitionState = {
      name: input.name ?? current.name,
      description: input.description ?? current.description,
      script: input.script ?? current.script,
      timeZone: input.timeZone ?? current.timeZone,
      suspended: input.suspended ?? current.suspended,
      preventMulti: input.preventMulti ?? current.preventMulti,
      notifyCancellation: input.notifyCancellation ?? current.notifyCancellation,
      notifyAll: input.notifyAll ?? current.notifyAll,
      apiAllowed: input.apiAllowed ?? current.apiAllowed,
      slackChannel: input.slackChannel ?? current.slackChannel,
      webhookUrl: input.webhookUrl === undefined ? current.webhookUrl : input.webhookUrl,
      catchUpWindowMinutes: input.catchUpWindowMinutes ?? current.catchUpWindowMinutes,
      retentionDays: input.retentionDays === undefined ? (current.retentionDays ?? null) : input.retentionDays,
      tags: input.tags ? normalizeTags(input.tags) : current.tags,
      crons: input.crons ? normalizeCrons(input.crons) : current.crons,
      suspendCrons: input.suspendCrons ? normalizeCrons(input.suspendCrons) : current.suspendCrons,
    };
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

/**
 * Completes definition rows into records: their tags and schedules, one statement per list, the three at once, in
 * chunks of IN_LIST_MAX ids and pages of LIST_PAGE_ROWS rows (a definition may hold 50 tags and 100 schedules). For
 * readers that select the rows themselves, such as the console's starred definitions, which joins its stars in the
 * same statement.
 */
export async function definitionRecords(db: Db, rows: readonly JobDefinitionRow[]): Promise<DefinitionRecord[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => fromDbInt(r.id));
  const tagsOf = new Map<number, string[]>();
  const cronsOf = new Map<number, string[]>();
  const suspendsOf = new Map<number, string[]>();
  for (const chunk of chunked(ids)) {
    const [tags, crons, suspends] = await Promise.all([
      readTags(db, chunk),
      readSchedules(db, 'job_schedules', chunk),
      readSchedules(db, 'job_suspend_schedules', chunk),
    ]);
    for (const [id, list] of tags) tagsOf.set(id, list);
    for (const [id, list] of crons) cronsOf.set(id, list);
    for (const [id, list] of suspends) suspendsOf.set(id, list);
  }
  return rows.map((row) => {
    const definition = toDefinition(row);
    return {
      ...definition,
      version: Number(row.version),
      tags: tagsOf.get(definition.id) ?? [],
      crons: cronsOf.get(definition.id) ?? [],
      suspendCrons: suspendsOf.get(definition.id) ?? [],
    };
  });
}

function append(map: Map<number, string[]>, key: number, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The tag names of the definitions (at most IN_LIST_MAX), each list sorted by name, read in pages. */
async function readTags(db: Db, definitionIds: readonly number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  let after: { definitionId: number; tagId: number } | undefined;
  for (;;) {
    const from = after;
    let query = db
      .selectFrom('job_definition_tags')
      .innerJoin('tags', 'tags.id', 'job_definition_tags.tag_id')
      .select(['job_definition_tags.job_definition_id as definitionId', 'job_definition_tags.tag_id as tagId', 'tags.name as name'])
      .where('job_definition_tags.job_definition_id', 'in', [...definitionIds])
      .orderBy('job_definition_tags.job_definition_id')
      .orderBy('job_definition_tags.tag_id')
      .limit(LIST_PAGE_ROWS);
    if (from) {
      query = query.where((eb) =>
        eb.or([
          eb('job_definition_tags.job_definition_id', '>', from.definitionId),
          eb.and([eb('job_definition_tags.job_definition_id', '=', from.definitionId), eb('job_definition_tags.tag_id', '>', from.tagId)]),
        ]),
      );
    }
    const rows = await query.execute();
    for (const row of rows) append(out, fromDbInt(row.definitionId), row.name);
    const last = rows[rows.length - 1];
    if (rows.length < LIST_PAGE_ROWS || !last) break;
    after = { definitionId: fromDbInt(last.definitionId), tagId: fromDbInt(last.tagId) };
  }
  // Binary order, as the utf8mb4_bin collation sorts them.
  for (const list of out.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out;
}

/**
 * The cron texts of the definitions (at most IN_LIST_MAX) in creation order, read in pages. A definition's schedules
 * are replaced together, so their ids follow the order they were given in.
 */
export async function readSchedules(
  db: Db,
  table: 'job_schedules' | 'job_suspend_schedules',
  definitionIds: readonly number[],
): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  let afterId = 0;
  for (;;) {
    const rows = await db
      .selectFrom(table)
      .select(['id', 'job_definition_id as definitionId', 'cron'])
      .where('job_definition_id', 'in', [...definitionIds])
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(LIST_PAGE_ROWS)
      .execute();
    for (const row of rows) append(out, fromDbInt(row.definitionId), row.cron);
    const last = rows[rows.length - 1];
    if (rows.length < LIST_PAGE_ROWS || !last) break;
    afterId = fromDbInt(last.id);
  }
  return out;
}
