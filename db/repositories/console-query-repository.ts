/**
 * The web console's overview reads, which the API does not need: the definition list's search, the dashboard's
 * instance lists, an instance page, script revisions, the charts and the timelines. Every read is a handful of
 * statements whatever the number of rows, because on the Data API each statement is an HTTP round trip.
 */
import type { Kysely } from 'kysely';
import { NotFoundError } from '../../core/errors';
import { instanceStatus, type Instance } from '../../core/model';
import type { Clock } from '../../core/ports';
import { fromDbInt, fromDbTime, fromNullableDbTime } from '../column-codec';
import type { Database, JobInstanceRow } from '../schema';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import type { DefinitionRepository } from './definition-repository';
import { INSTANCE_WIDTH, chunked, readByWidth, rowWidths, widthOf } from './paging';
import { readInstanceParts, type InstanceDetail } from './query-repository';
import { instanceEnvOf, toInstance } from './row-mappers';

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

/** The definitions a search of the console's list finds, with every tag in use and the number of definitions. */
export interface DefinitionSearch {
  matches: DefinitionRecord[];
  allTags: string[];
  total: number;
}

/** Instances joined with their definitions, before any selection. */
function instancesJoined(db: Kysely<Database>) {
  return db.selectFrom('job_instances as i').innerJoin('job_definitions as d', 'd.id', 'i.job_definition_id');
}
type InstanceQuery = ReturnType<typeof instancesJoined>;

/** The console's overview queries. */
export class ConsoleQueryRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly definitions: Pick<DefinitionRepository, 'list'>,
  ) {}

  /**
   * Definitions having every one of `tags` whose name, script or a tag contains `q` (any case), by id. The list
   * is read whole and filtered here: a LIKE over scripts would scan them in SQL anyway, and the list page shows
   * every tag in use, which needs every definition.
   */
  async searchDefinitions(q: string, tags: readonly string[]): Promise<DefinitionSearch> {
    const all = await this.definitions.list();
    const needle = q.toLowerCase();
    const matches = all.filter(
      (d) =>
        tags.every((t) => d.tags.includes(t)) &&
        (needle === '' || d.name.toLowerCase().includes(needle) || d.script.toLowerCase().includes(needle) || d.tags.some((t) => t.toLowerCase().includes(needle))),
    );
    return { matches, allTags: [...new Set(all.flatMap((d) => d.tags))].sort(), total: all.length };
  }

  /** Names of the definitions with these ids (those that exist), for links in a script. */
  async definitionNames(ids: readonly number[]): Promise<Map<number, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom('job_definitions').select(['id', 'name']).where('id', 'in', [...ids]).execute();
    return new Map(rows.map((r) => [fromDbInt(r.id), r.name]));
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
      readInstanceParts(this.db, instanceId),
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
