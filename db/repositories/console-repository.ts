/**
 * Reads and writes of the web console that the API does not need: its people (users, definition admins, stars)
 * and the overview queries behind the dashboard, charts and timelines. Every read is a handful of statements
 * whatever the number of rows, because on the Data API each statement is an HTTP round trip. Writes to
 * definitions, instances and workers do not live here: the console calls the same repositories and services as the
 * API for those.
 */
import type { ColumnType, Kysely, Transaction } from 'kysely';
import { NotFoundError } from '../../core/errors';
import { normalizeEmail } from '../../core/sign-in-rules';
import { instanceStatus, type Instance } from '../../core/model';
import type { Clock, IdGenerator } from '../../core/ports';
import { fromDbInt, fromDbTime, fromNullableDbTime } from '../column-codec';
import type { Database, DbTime, JobInstanceRow } from '../schema';
import { definitionRecords, type DefinitionRecord } from './definition-repository';
import { INSTANCE_WIDTH, chunked, readByWidth, rowWidths, widthOf } from './paging';
import { readInstanceParts, type InstanceDetail } from './query-repository';
import { instanceEnvOf, toInstance } from './row-mappers';

export interface ConsoleUserTable {
  id: number;
  email: string;
  name: string;
  created_at: DbTime;
  last_signed_in_at: DbTime;
}

export interface DefinitionAdminTable {
  job_definition_id: number;
  email: string;
  created_at: DbTime;
}

export interface DefinitionStarTable {
  email: string;
  job_definition_id: number;
  created_at: ColumnType<Date | string, Date, Date>;
}

/** The console's tables (migration 0002). */
// A type alias, not an interface: `withTables` wants an index-compatible record.
export type ConsoleTables = {
  console_users: ConsoleUserTable;
  definition_admins: DefinitionAdminTable;
  definition_stars: DefinitionStarTable;
};

export type ConsoleDatabase = Database & ConsoleTables;

export interface ConsoleUser {
  id: number;
  email: string;
  name: string;
  createdAt: Date;
  lastSignedInAt: Date;
}

/** An instance with the name of its definition, for lists that span definitions. */
export interface InstanceWithName extends Instance {
  definitionName: string;
}

/** One bar of a timeline: an execution on a worker, or an instance of a job. */
export interface TimelineBar {
  id: number;
  /** The row it belongs to: a hostname, or a definition id. */
  group: string;
  label: string;
  start: Date;
  /** Null while it still runs. */
  end: Date | null;
  definitionId: number;
  definitionName: string;
  instanceId: number;
  /** success, failure, running; or an instance status. */
  state: string;
}

/** Run time and peak memory of one instance, for the definition's charts. */
export interface InstanceStat {
  instanceId: number;
  createdAt: Date;
  /** Milliseconds from creation to its end (or to now while it works). */
  durationMs: number;
  status: string;
  /** Largest sampled RSS of any of its commands, in KiB; null when nothing was sampled. */
  maxRssKb: number | null;
}

export interface ScriptRevision {
  id: number;
  script: string;
  changedBy: string;
  changedAt: Date;
}

/** Output kept so far of a command that has not finished (the head and the tail of its output). */
export interface LiveOutput {
  executionId: number;
  outputHead: string;
  outputTail: string;
}

/** What the instance page shows: the instance's detail, its definition's name, its launch env and its live output. */
export interface InstancePage {
  definitionName: string;
  detail: InstanceDetail;
  env: Record<string, string>;
  outputs: LiveOutput[];
}


/** Instances joined with their definitions, before any selection. */
function instancesJoined(db: Kysely<ConsoleDatabase>) {
  return db.selectFrom('job_instances as i').innerJoin('job_definitions as d', 'd.id', 'i.job_definition_id');
}
type InstanceQuery = ReturnType<typeof instancesJoined>;

/** The console's people and overview queries. */
export class ConsoleRepository {
  private readonly db: Kysely<ConsoleDatabase>;

  constructor(
    private readonly root: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
  ) {
    this.db = root.withTables<ConsoleTables>();
  }

  /** Records a sign-in, creating the user on the first one; returns the user. */
  async recordSignIn(email: string, name: string): Promise<ConsoleUser> {
    const key = normalizeEmail(email);
    const now = this.clock.now();
    const updated = await this.db.updateTable('console_users').set({ name, last_signed_in_at: now }).where('email', '=', key).executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0 && !(await this.findUser(key))) {
      await this.ids.ensureAvailable?.(1);
      try {
        await this.db.insertInto('console_users').values({ id: await this.ids.nextId(), email: key, name, created_at: now, last_signed_in_at: now }).execute();
      } catch (error) {
        // Two first sign-ins of one person at once: the other insert won, which is the same outcome.
        if (!(await this.findUser(key))) throw error;
      }
    }
    const user = await this.findUser(key);
    if (!user) throw new Error(`console user ${key} vanished after sign-in`);
    return user;
  }

  /** The user with this email, or undefined. */
  async findUser(email: string): Promise<ConsoleUser | undefined> {
    const row = await this.db.selectFrom('console_users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
    return row
      ? { id: fromDbInt(row.id), email: row.email, name: row.name, createdAt: fromDbTime(row.created_at), lastSignedInAt: fromDbTime(row.last_signed_in_at) }
      : undefined;
  }

  /** Every user, by email (for the admin picker). */
  async listUsers(): Promise<ConsoleUser[]> {
    const rows = await this.db.selectFrom('console_users').selectAll().orderBy('email').execute();
    return rows.map((row) => ({
      id: fromDbInt(row.id),
      email: row.email,
      name: row.name,
      createdAt: fromDbTime(row.created_at),
      lastSignedInAt: fromDbTime(row.last_signed_in_at),
    }));
  }

  /** Admin emails per definition id (every definition when `definitionIds` is absent). */
  async adminsOf(definitionIds?: readonly number[]): Promise<Map<number, string[]>> {
    let query = this.db.selectFrom('definition_admins').select(['job_definition_id', 'email']).orderBy('email');
    if (definitionIds) {
      if (definitionIds.length === 0) return new Map();
      query = query.where('job_definition_id', 'in', definitionIds);
    }
    const out = new Map<number, string[]>();
    for (const row of await query.execute()) {
      const id = fromDbInt(row.job_definition_id);
      out.set(id, [...(out.get(id) ?? []), row.email]);
    }
    return out;
  }

  /** True when the person administers the definition. */
  async isDefinitionAdmin(definitionId: number, email: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('definition_admins')
      .select('email')
      .where('job_definition_id', '=', definitionId)
      .where('email', '=', normalizeEmail(email))
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Replaces the admins of a definition inside the caller's transaction (the definition's own save). */
  async replaceAdmins(trx: Transaction<Database>, definitionId: number, emails: readonly string[]): Promise<void> {
    const db = trx.withTables<ConsoleTables>();
    const unique = [...new Set(emails.map(normalizeEmail).filter((e) => e !== ''))];
    await db.deleteFrom('definition_admins').where('job_definition_id', '=', definitionId).execute();
    if (unique.length > 0) {
      const now = this.clock.now();
      await db.insertInto('definition_admins').values(unique.map((email) => ({ job_definition_id: definitionId, email, created_at: now }))).execute();
    }
  }

  /** Removes what the console kept about a deleted definition, inside the caller's transaction (the delete's). */
  async forgetDefinition(trx: Transaction<Database>, definitionId: number): Promise<void> {
    const db = trx.withTables<ConsoleTables>();
    await db.deleteFrom('definition_admins').where('job_definition_id', '=', definitionId).execute();
    await db.deleteFrom('definition_stars').where('job_definition_id', '=', definitionId).execute();
  }

  /** Ids of the definitions a person starred. */
  async starredIds(email: string): Promise<Set<number>> {
    const rows = await this.db.selectFrom('definition_stars').select('job_definition_id').where('email', '=', normalizeEmail(email)).execute();
    return new Set(rows.map((r) => fromDbInt(r.job_definition_id)));
  }

  /** The definitions a person starred, by id, with their tags and schedules (the dashboard's rows): the stars are joined, not read first. */
  async starredDefinitions(email: string): Promise<DefinitionRecord[]> {
    const widths = rowWidths(
      await this.db
        .selectFrom('job_definitions as d')
        .innerJoin('definition_stars as s', 's.job_definition_id', 'd.id')
        .select(['d.id as id', widthOf('d.description', 'd.script').as('wide')])
        .where('s.email', '=', normalizeEmail(email))
        .orderBy('d.id')
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.root.selectFrom('job_definitions').selectAll().where('id', 'in', ids).execute());
    return definitionRecords(this.root, rows);
  }

  /** Stars or unstars a definition for a person; starring twice is harmless. */
  async setStar(email: string, definitionId: number, starred: boolean): Promise<void> {
    const key = normalizeEmail(email);
    await this.db.deleteFrom('definition_stars').where('email', '=', key).where('job_definition_id', '=', definitionId).execute();
    if (starred) await this.db.insertInto('definition_stars').values({ email: key, job_definition_id: definitionId, created_at: this.clock.now() }).execute();
  }

  /** The newest instance of each of the definitions (by creation time). */
  async latestInstances(definitionIds: readonly number[]): Promise<Map<number, Instance>> {
    const out = new Map<number, Instance>();
    for (const chunk of chunked(definitionIds)) await this.latestInstancesOf(chunk, out);
    return out;
  }

  /** latestInstances for one chunk of ids, into `out`: the newest times, then the rows in chunks that fit. */
  private async latestInstancesOf(definitionIds: readonly number[], out: Map<number, Instance>): Promise<void> {
    const newest = await this.db
      .selectFrom('job_instances')
      .select(['job_definition_id', (eb) => eb.fn.max('created_at').as('at')])
      .where('job_definition_id', 'in', [...definitionIds])
      .groupBy('job_definition_id')
      .execute();
    if (newest.length === 0) return;
    const times = newest.map((n) => fromDbTime(n.at as Date | string));
    const widths = rowWidths(
      await this.db
        .selectFrom('job_instances')
        .select(['id', INSTANCE_WIDTH.as('wide')])
        .where('job_definition_id', 'in', [...definitionIds])
        .where('created_at', 'in', times)
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', ids).execute());
    const wanted = new Map(newest.map((n, i) => [fromDbInt(n.job_definition_id), times[i]?.getTime()]));
    for (const instance of rows.map(toInstance)) {
      if (wanted.get(instance.definitionId) !== instance.createdAt.getTime()) continue;
      const seen = out.get(instance.definitionId);
      if (!seen || seen.id < instance.id) out.set(instance.definitionId, instance);
    }
  }

  /** Instances joined with their definition's name (`definition_name`), for the console's lists and timelines. */
  private instancesWithNames() {
    return this.instancesJoined().selectAll('i').select('d.name as definition_name');
  }

  private instancesJoined(): InstanceQuery {
    return instancesJoined(this.db);
  }

  /**
   * The instances `shape` selects (its filters, order and limit), with their definition's name: ids and widths
   * first, then the rows in chunks that fit a Data API response however wide their scripts and env are.
   */
  private async instancesWithNamesWhere(shape: (query: InstanceQuery) => InstanceQuery): Promise<(JobInstanceRow & { definition_name: string })[]> {
    const widths = rowWidths(await shape(this.instancesJoined()).select(['i.id as id', widthOf('i.script', 'i.env').as('wide')]).execute());
    return readByWidth(widths, (ids) => this.instancesWithNames().where('i.id', 'in', ids).execute());
  }

  /** Unfinished, uncanceled instances without an error, oldest first, optionally of some definitions only. */
  async workingInstances(limit: number, definitionIds?: readonly number[]): Promise<InstanceWithName[]> {
    if (definitionIds && definitionIds.length === 0) return [];
    const rows = await this.instancesWithNamesWhere((query) => {
      let q = query.where('i.finished_at', 'is', null).where('i.canceled_at', 'is', null).where('i.error_at', 'is', null);
      if (definitionIds) q = q.where('i.job_definition_id', 'in', [...definitionIds]);
      return q.orderBy('i.created_at').orderBy('i.id').limit(limit);
    });
    return rows.map(toInstanceWithName);
  }

  /** Instances that stopped on an error and are not retried or canceled yet, newest error first. */
  async failedInstances(limit: number): Promise<InstanceWithName[]> {
    const rows = await this.instancesWithNamesWhere((query) =>
      query
        .where('i.finished_at', 'is', null)
        .where('i.canceled_at', 'is', null)
        .where('i.error_at', 'is not', null)
        .orderBy('i.error_at', 'desc')
        .orderBy('i.id', 'desc')
        .limit(limit),
    );
    return rows.map(toInstanceWithName);
  }

  /** Instances canceled since `since` (by a person, prevent_multi or a critical error), newest first. */
  async canceledSince(since: Date, limit: number): Promise<InstanceWithName[]> {
    const rows = await this.instancesWithNamesWhere((query) => query.where('i.canceled_at', '>=', since).orderBy('i.canceled_at', 'desc').limit(limit));
    return rows.map(toInstanceWithName);
  }

  /**
   * An instance of the definition as its page shows it, reading each table once: the live view runs this every
   * poll. NotFoundError when the instance belongs to another definition.
   */
  async instancePage(definitionId: number, instanceId: number): Promise<InstancePage> {
    const [row, parts] = await Promise.all([
      this.instancesWithNames().where('i.id', '=', instanceId).where('i.job_definition_id', '=', definitionId).executeTakeFirst(),
      readInstanceParts(this.root, instanceId),
    ]);
    if (!row) throw new NotFoundError('job instance', instanceId);
    return {
      definitionName: row.definition_name,
      detail: { instance: toInstance(row), tokens: parts.tokens, executions: parts.executions },
      env: instanceEnvOf(row),
      // Commands not archived yet (running, or finished and awaiting their step) keep their output so far.
      outputs: parts.unarchived.map((e) => ({ executionId: fromDbInt(e.id), outputHead: e.output_head, outputTail: e.output_tail })),
    };
  }

  /** Script revisions of a definition, newest first. */
  async revisions(definitionId: number, limit: number): Promise<ScriptRevision[]> {
    const widths = rowWidths(
      await this.db
        .selectFrom('script_revisions')
        .select(['id', widthOf('script').as('wide')])
        .where('job_definition_id', '=', definitionId)
        .orderBy('changed_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('script_revisions').selectAll().where('id', 'in', ids).execute());
    return rows.map((r) => ({ id: fromDbInt(r.id), script: r.script, changedBy: r.changed_by, changedAt: fromDbTime(r.changed_at) }));
  }

  /** Run time and peak memory of the newest instances of a definition, oldest first (for charts). */
  async instanceStats(definitionId: number, limit: number): Promise<InstanceStat[]> {
    const widths = rowWidths(
      await this.db
        .selectFrom('job_instances')
        .select(['id', INSTANCE_WIDTH.as('wide')])
        .where('job_definition_id', '=', definitionId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', ids).execute());
    const instances = rows.map(toInstance).reverse();
    if (instances.length === 0) return [];
    const memory = await this.db
      .selectFrom('memory_samples')
      .select(['job_instance_id', (eb) => eb.fn.max('rss_kb').as('rss')])
      .where('job_instance_id', 'in', instances.map((i) => i.id))
      .groupBy('job_instance_id')
      .execute();
    const rssOf = new Map(memory.map((m) => [fromDbInt(m.job_instance_id), m.rss === null ? null : Number(m.rss)]));
    const now = this.clock.now().getTime();
    return instances.map((instance) => {
      const end = instance.finishedAt ?? instance.canceledAt ?? instance.errorAt;
      return {
        instanceId: instance.id,
        createdAt: instance.createdAt,
        durationMs: Math.max(0, (end?.getTime() ?? now) - instance.createdAt.getTime()),
        status: instanceStatus(instance),
        maxRssKb: rssOf.get(instance.id) ?? null,
      };
    });
  }

  /** Executions that ran on workers within [from, to], running ones included; grouped by hostname. */
  async executionTimeline(from: Date, to: Date, limit: number, hostname?: string): Promise<TimelineBar[]> {
    let doneQuery = this.db
      .selectFrom('execution_histories as h')
      .innerJoin('job_definitions as d', 'd.id', 'h.job_definition_id')
      .select(['h.execution_id', 'h.hostname', 'h.shell', 'h.started_at', 'h.finished_at', 'h.exit_status', 'h.job_definition_id', 'h.job_instance_id', 'd.name'])
      .where('h.started_at', 'is not', null)
      .where('h.started_at', '<', to)
      .where('h.finished_at', '>', from);
    let runningQuery = this.db
      .selectFrom('executions as e')
      .innerJoin('job_definitions as d', 'd.id', 'e.job_definition_id')
      .select(['e.id', 'e.hostname', 'e.shell', 'e.started_at', 'e.finished_at', 'e.exit_status', 'e.job_definition_id', 'e.job_instance_id', 'd.name'])
      .where('e.started_at', 'is not', null)
      .where('e.started_at', '<', to)
      .where((eb) => eb.or([eb('e.finished_at', 'is', null), eb('e.finished_at', '>', from)]));
    // Filtered in SQL, before the limit: on a busy system a host's bars must not fall outside it.
    if (hostname !== undefined) {
      doneQuery = doneQuery.where('h.hostname', '=', hostname);
      runningQuery = runningQuery.where('e.hostname', '=', hostname);
    }
    const [done, running] = await Promise.all([doneQuery.orderBy('h.started_at', 'desc').limit(limit).execute(), runningQuery.limit(limit).execute()]);
    const bar = (id: number | string, row: (typeof done)[number] | (typeof running)[number]): TimelineBar => {
      const end = fromNullableDbTime(row.finished_at);
      return {
        id: fromDbInt(id),
        group: row.hostname ?? '(unknown host)',
        label: `${row.name}: ${row.shell}`,
        start: fromDbTime(row.started_at as Date | string),
        end,
        definitionId: fromDbInt(row.job_definition_id),
        definitionName: row.name,
        instanceId: fromDbInt(row.job_instance_id),
        state: end === null ? 'running' : row.exit_status === 0 ? 'success' : 'failure',
      };
    };
    const seen = new Set<number>();
    const bars: TimelineBar[] = [];
    for (const row of running) {
      seen.add(fromDbInt(row.id));
      bars.push(bar(row.id, row));
    }
    for (const row of done) if (!seen.has(fromDbInt(row.execution_id))) bars.push(bar(row.execution_id, row));
    return bars.sort((a, b) => a.start.getTime() - b.start.getTime());
  }

  /** Instances alive within [from, to] (created before `to`, ended after `from` or still open), grouped by definition. */
  async instanceTimeline(from: Date, to: Date, limit: number, definitionIds?: readonly number[]): Promise<TimelineBar[]> {
    if (definitionIds && definitionIds.length === 0) return [];
    const rows = await this.instancesWithNamesWhere((base) => {
      let query = base.where('i.created_at', '<', to).where((eb) =>
        eb.or([
          eb.and([eb('i.finished_at', 'is', null), eb('i.canceled_at', 'is', null), eb('i.error_at', 'is', null)]),
          eb('i.finished_at', '>', from),
          eb('i.canceled_at', '>', from),
          eb('i.error_at', '>', from),
        ]),
      );
      if (definitionIds) query = query.where('i.job_definition_id', 'in', [...definitionIds]);
      return query.orderBy('i.created_at', 'desc').limit(limit);
    });
    return rows
      .map((row) => {
        const instance = toInstance(row);
        const end = instance.finishedAt ?? instance.canceledAt ?? instance.errorAt;
        const state = instanceStatus(instance);
        return {
          id: instance.id,
          group: String(instance.definitionId),
          label: `${row.definition_name} #${instance.id}`,
          start: instance.createdAt,
          end,
          definitionId: instance.definitionId,
          definitionName: row.definition_name,
          instanceId: instance.id,
          state,
        };
      })
      .sort((a, b) => a.start.getTime() - b.start.getTime());
  }
}

function toInstanceWithName(row: JobInstanceRow & { definition_name: string }): InstanceWithName {
  return { ...toInstance(row), definitionName: row.definition_name };
}
