/**
 * Reads a Kuroko2 database (its `db/schema.rb`, version 34) for `kuroko import kuroko2`: job definitions with
 * their schedules, tags, admins, stars, memory expectancy and script revisions, the users, the queues of its
 * workers, and, for history, finished instances with their logs, executions and memory. Read-only: only SELECTs.
 *
 * Kuroko2 names its tables `table_name_prefix` + the model's table name (`kuroko2_` by default); the prefix is
 * given. Rails stores DATETIME columns in UTC, which is how they are read here.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { fromDbBool, fromDbInt, fromDbTime, fromNullableDbTime } from '../column-codec';
import { createDatabase } from '../connection';
import type { DatabaseHandle } from '../connection';
import type { Database } from '../schema';

export const DEFAULT_KUROKO2_TABLE_PREFIX = 'kuroko2_';
const TABLE_PREFIX = /^\w*$/;
/** Rows fetched per statement when reading per-instance history. */
const HISTORY_BATCH = 200;

export interface Kuroko2Revision {
  script: string;
  userId: number | null;
  changedAt: Date;
}

export interface Kuroko2Definition {
  id: number;
  name: string;
  description: string;
  script: string;
  suspended: boolean;
  preventMulti: number;
  notifyCancellation: boolean;
  hipchatRoom: string;
  hipchatNotifyFinished: boolean;
  hipchatAdditionalText: string | null;
  slackChannel: string;
  apiAllowed: boolean;
  webhookUrl: string | null;
  createdAt: Date | null;
  updatedAt: Date | null;
  /** Launch crons, in id order. */
  crons: string[];
  suspendCrons: string[];
  tags: string[];
  adminUserIds: number[];
  starUserIds: number[];
  /** The largest expected_value of its memory_expectancies rows (KB), if any. */
  memoryExpectancyKb: number | null;
  /** Oldest first. */
  revisions: Kuroko2Revision[];
}

export interface Kuroko2User {
  id: number;
  uid: string;
  name: string;
  email: string;
  suspendedAt: Date | null;
  createdAt: Date | null;
}

export interface Kuroko2Snapshot {
  definitions: Kuroko2Definition[];
  users: Map<number, Kuroko2User>;
  /** Queues of Kuroko2's workers (its own `queue:` validation accepted these). */
  workerQueues: string[];
}

export interface Kuroko2Log {
  level: string;
  message: string;
  createdAt: Date;
}

export interface Kuroko2ExecutionRecord {
  /** `history:<id>` for execution_histories rows, `execution:<id>` for executions rows. */
  key: string;
  queue: string;
  shell: string;
  hostname: string | null;
  workerId: number | null;
  pid: number | null;
  startedAt: Date | null;
  finishedAt: Date;
  exitStatus: number | null;
  termSignal: number | null;
}

export interface Kuroko2Instance {
  id: number;
  definitionId: number;
  script: string;
  retrying: boolean;
  createdAt: Date;
  finishedAt: Date | null;
  canceledAt: Date | null;
  errorAt: Date | null;
  logs: Kuroko2Log[];
  executions: Kuroko2ExecutionRecord[];
  /** The largest memory_consumption_logs value (KB), if any. */
  maxMemoryKb: number | null;
  memorySampledAt: Date | null;
}

type Row = Record<string, unknown>;

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const nullableStr = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const int = (v: unknown): number => fromDbInt(v as number | string);
const nullableInt = (v: unknown): number | null => (v === null || v === undefined ? null : fromDbInt(v as number | string));
const bool = (v: unknown): boolean => fromDbBool(v as number | boolean | string);
const time = (v: unknown): Date | null => fromNullableDbTime((v ?? null) as Date | string | null);

function groupBy<T>(rows: readonly T[], key: (row: T) => number): Map<number, T[]> {
  const map = new Map<number, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return map;
}

/** A read-only view of a Kuroko2 database. */
export class Kuroko2Source {
  private constructor(
    private readonly handle: DatabaseHandle,
    private readonly prefix: string,
  ) {}

  /** Opens a Kuroko2 database at a mysql:// URL; the prefix must be letters, digits and `_`. */
  static open(url: string, prefix = DEFAULT_KUROKO2_TABLE_PREFIX): Kuroko2Source {
    if (!TABLE_PREFIX.test(prefix)) throw new RangeError(`table prefix \`${prefix}\` may hold only letters, digits and _`);
    const handle = createDatabase(url, { poolSize: 2 });
    if (handle.dialect !== 'mysql') {
      void handle.close();
      throw new RangeError('a Kuroko2 database is read over mysql://USER:PASS@HOST:PORT/DB');
    }
    return new Kuroko2Source(handle, prefix);
  }

  private get db(): Kysely<Database> {
    return this.handle.db;
  }

  private async select(table: string, where = sql``, order = sql`order by id`): Promise<Row[]> {
    const result = await sql<Row>`select * from ${sql.table(this.prefix + table)} ${where} ${order}`.execute(this.db);
    return result.rows;
  }

  /** Definitions, users and worker queues: everything but history. */
  async readSnapshot(): Promise<Kuroko2Snapshot> {
    const [defs, schedules, suspends, tags, defTags, users, admins, stars, expectancies, revisions, workers] = await Promise.all([
      this.select('job_definitions'),
      this.select('job_schedules'),
      this.select('job_suspend_schedules'),
      this.select('tags'),
      this.select('job_definition_tags'),
      this.select('users'),
      this.select('admin_assignments'),
      this.select('stars'),
      this.select('memory_expectancies'),
      this.select('script_revisions', sql``, sql`order by changed_at, id`),
      this.select('workers'),
    ]);
    const tagName = new Map(tags.map((t) => [int(t.id), str(t.name)]));
    const crons = groupBy(schedules, (r) => int(r.job_definition_id));
    const suspendCrons = groupBy(suspends, (r) => int(r.job_definition_id));
    const tagsOf = groupBy(defTags, (r) => int(r.job_definition_id));
    const adminsOf = groupBy(admins, (r) => int(r.job_definition_id));
    const starsOf = groupBy(stars, (r) => int(r.job_definition_id));
    const expectancyOf = groupBy(expectancies, (r) => int(r.job_definition_id));
    const revisionsOf = groupBy(revisions, (r) => int(r.job_definition_id));
    const definitions = defs.map((d): Kuroko2Definition => {
      const id = int(d.id);
      const expected = (expectancyOf.get(id) ?? []).map((e) => int(e.expected_value));
      return {
        id,
        name: str(d.name),
        description: str(d.description),
        script: str(d.script),
        suspended: bool(d.suspended),
        preventMulti: int(d.prevent_multi),
        notifyCancellation: bool(d.notify_cancellation),
        hipchatRoom: str(d.hipchat_room),
        hipchatNotifyFinished: bool(d.hipchat_notify_finished),
        hipchatAdditionalText: nullableStr(d.hipchat_additional_text),
        slackChannel: str(d.slack_channel),
        apiAllowed: bool(d.api_allowed),
        webhookUrl: nullableStr(d.webhook_url),
        createdAt: time(d.created_at),
        updatedAt: time(d.updated_at),
        crons: (crons.get(id) ?? []).map((r) => nullableStr(r.cron)).filter((c): c is string => c !== null),
        suspendCrons: (suspendCrons.get(id) ?? []).map((r) => nullableStr(r.cron)).filter((c): c is string => c !== null),
        tags: (tagsOf.get(id) ?? []).map((r) => tagName.get(int(r.tag_id))).filter((t): t is string => t !== undefined),
        adminUserIds: (adminsOf.get(id) ?? []).map((r) => int(r.user_id)),
        starUserIds: (starsOf.get(id) ?? []).map((r) => int(r.user_id)),
        memoryExpectancyKb: expected.length > 0 ? Math.max(...expected) : null,
        revisions: (revisionsOf.get(id) ?? []).map((r) => ({ script: str(r.script), userId: nullableInt(r.user_id), changedAt: fromDbTime(r.changed_at as string) })),
      };
    });
    const userMap = new Map<number, Kuroko2User>();
    for (const u of users) {
      userMap.set(int(u.id), { id: int(u.id), uid: str(u.uid), name: str(u.name), email: str(u.email).trim(), suspendedAt: time(u.suspended_at), createdAt: time(u.created_at) });
    }
    const workerQueues = [...new Set(workers.map((w) => str(w.queue)))];
    return { definitions, users: userMap, workerQueues };
  }

  /** Ids of the instances of these definitions that finished (or were canceled) since `since`, oldest first. */
  async finishedInstanceIds(definitionId: number, since: Date): Promise<number[]> {
    const rows = await sql<Row>`select id from ${sql.table(`${this.prefix}job_instances`)}
      where job_definition_id = ${definitionId} and (finished_at is not null or canceled_at is not null)
      and created_at >= ${since} order by created_at, id`.execute(this.db);
    return rows.rows.map((r) => int(r.id));
  }

  /** Finished instances with their logs, executions and memory, by id. */
  async readInstances(ids: readonly number[]): Promise<Kuroko2Instance[]> {
    const out: Kuroko2Instance[] = [];
    for (let i = 0; i < ids.length; i += HISTORY_BATCH) {
      const batch = ids.slice(i, i + HISTORY_BATCH);
      const inList = sql`(${sql.join(batch)})`;
      const [instances, logs, histories, executions, memory] = await Promise.all([
        this.select('job_instances', sql`where id in ${inList}`),
        this.select('logs', sql`where job_instance_id in ${inList}`),
        this.select('execution_histories', sql`where job_instance_id in ${inList}`),
        this.select('executions', sql`where job_instance_id in ${inList} and finished_at is not null`),
        this.select('memory_consumption_logs', sql`where job_instance_id in ${inList}`),
      ]);
      const logsOf = groupBy(logs, (r) => int(r.job_instance_id));
      const historiesOf = groupBy(histories, (r) => int(r.job_instance_id));
      const executionsOf = groupBy(executions, (r) => int(r.job_instance_id));
      const memoryOf = groupBy(memory, (r) => int(r.job_instance_id));
      for (const row of instances) {
        const id = int(row.id);
        const samples = memoryOf.get(id) ?? [];
        const peak = samples.reduce<Row | undefined>((best, r) => (best === undefined || int(r.value) > int(best.value) ? r : best), undefined);
        out.push({
          id,
          definitionId: int(row.job_definition_id),
          script: str(row.script),
          retrying: bool(row.retrying),
          createdAt: time(row.created_at) ?? new Date(0),
          finishedAt: time(row.finished_at),
          canceledAt: time(row.canceled_at),
          errorAt: time(row.error_at),
          logs: (logsOf.get(id) ?? []).map((l) => ({ level: str(l.level), message: str(l.message), createdAt: time(l.created_at) ?? new Date(0) })),
          executions: [
            ...(historiesOf.get(id) ?? []).map((h) => ({
              key: `history:${int(h.id)}`,
              queue: str(h.queue),
              shell: str(h.shell),
              hostname: nullableStr(h.hostname),
              workerId: nullableInt(h.worker_id),
              pid: null,
              startedAt: time(h.started_at),
              finishedAt: time(h.finished_at) ?? new Date(0),
              exitStatus: null,
              termSignal: null,
            })),
            ...(executionsOf.get(id) ?? []).map((e) => ({
              key: `execution:${int(e.id)}`,
              queue: str(e.queue),
              shell: str(e.shell),
              hostname: nullableStr(e.hostname),
              workerId: nullableInt(e.worker_id),
              pid: nullableInt(e.pid),
              startedAt: time(e.started_at),
              finishedAt: time(e.finished_at) ?? new Date(0),
              exitStatus: nullableInt(e.exit_status),
              termSignal: nullableInt(e.term_signal),
            })),
          ],
          maxMemoryKb: peak ? int(peak.value) : null,
          memorySampledAt: peak ? time(peak.created_at) : null,
        });
      }
    }
    return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id - b.id);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
