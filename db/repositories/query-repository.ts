/**
 * Read models for the HTTP API and the console: instance details, logs, stats, workers and executions. Each read
 * is a handful of statements whatever the number of rows (no per-row queries), because on the Data API every
 * statement is an HTTP round trip.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import * as z from 'zod/mini';
import { NotFoundError } from '../../core/errors';
import { INSTANCE_STATUS } from '../../core/model';
import type { Instance, InstanceStatus, LogLevel, TokenStatus } from '../../core/model';
import type { Clock } from '../../core/ports';
import { fromDbBool, fromDbInt, fromDbTime, fromNullableDbTime, parseJsonColumn } from '../column-codec';
import type { Database, ExecutionRow } from '../schema';
import { toInstance } from './row-mappers';
import { LIVE_WORKER_SECONDS } from './validation-context-repository';
import { EXECUTION_WIDTH, INSTANCE_WIDTH, readByWidth, rowWidths, scanWidths, widthOf } from './paging';

const MS_PER_SECOND = 1000;
/** Kuroko2's threshold for `/v1/stats/waiting_execution`: executions nobody claimed this long after creation. */
export const WAITING_EXECUTION_SECONDS = 180;

export interface TokenView {
  id: number;
  parentId: number | null;
  path: string;
  status: TokenStatus;
  message: string;
}

/** A command of an instance: unfinished (from `executions`) or done (from `execution_histories`). */
export interface ExecutionView {
  id: number;
  tokenId: number;
  instanceId: number;
  definitionId: number;
  queue: string;
  shell: string;
  pid: number | null;
  hostname: string | null;
  workerId: number | null;
  createdAt: Date | null;
  claimedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  exitStatus: number | null;
  termSignal: string | null;
}

/** An unfinished command with the name of its definition (null when the definition is gone). */
export interface UnfinishedExecution extends ExecutionView {
  definitionName: string | null;
}

export interface InstanceDetail {
  instance: Instance;
  tokens: TokenView[];
  executions: ExecutionView[];
}

export interface LogView {
  id: number;
  level: LogLevel;
  message: string;
  createdAt: Date;
}

export const WORKER_STATUS = { working: 'working', idle: 'idle', suspended: 'suspended', draining: 'draining', lost: 'lost' } as const;
export type WorkerStatus = (typeof WORKER_STATUS)[keyof typeof WORKER_STATUS];

export interface WorkerView {
  id: number;
  hostname: string;
  queues: string[];
  slots: number;
  status: WorkerStatus;
  suspended: boolean;
  draining: boolean;
  heartbeatAt: Date;
  startedAt: Date;
  /** Unfinished executions the worker holds. */
  executionIds: number[];
}

export interface InstanceListOptions {
  status?: InstanceStatus;
  limit: number;
  /** Only instances older than this one (the last id of the previous page). */
  beforeId?: number;
}

const stringArray = z.array(z.string());

/** Queries behind the read endpoints. */
export class QueryRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  /** True once the database answers a trivial query. */
  async ping(): Promise<boolean> {
    await sql`select 1`.execute(this.db);
    return true;
  }

  /** One instance, or undefined. */
  async findInstance(instanceId: number): Promise<Instance | undefined> {
    const row = await this.db.selectFrom('job_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
    return row ? toInstance(row) : undefined;
  }

  /** True when the execution (running or archived) belongs to the instance. */
  async executionBelongsTo(instanceId: number, executionId: number): Promise<boolean> {
    const [current, done] = await Promise.all([
      this.db.selectFrom('executions').select('id').where('id', '=', executionId).where('job_instance_id', '=', instanceId).executeTakeFirst(),
      this.db.selectFrom('execution_histories').select('id').where('execution_id', '=', executionId).where('job_instance_id', '=', instanceId).executeTakeFirst(),
    ]);
    return current !== undefined || done !== undefined;
  }

  /** An instance of the definition with its tokens and commands; NotFoundError when it belongs to another definition. */
  async getInstanceDetail(definitionId: number, instanceId: number): Promise<InstanceDetail> {
    const instance = await this.findInstance(instanceId);
    if (!instance || instance.definitionId !== definitionId) throw new NotFoundError('job instance', instanceId);
    const { tokens, executions } = await readInstanceParts(this.db, instanceId);
    return { instance, tokens, executions };
  }

  /** Instances of a definition, newest first (by creation time, then id), optionally of one status. */
  async listInstances(definitionId: number, options: InstanceListOptions): Promise<Instance[]> {
    let query = this.db.selectFrom('job_instances').where('job_definition_id', '=', definitionId);
    switch (options.status) {
      case INSTANCE_STATUS.success:
        query = query.where('finished_at', 'is not', null);
        break;
      case INSTANCE_STATUS.canceled:
        query = query.where('finished_at', 'is', null).where('canceled_at', 'is not', null);
        break;
      case INSTANCE_STATUS.error:
        query = query.where('finished_at', 'is', null).where('canceled_at', 'is', null).where('error_at', 'is not', null);
        break;
      case INSTANCE_STATUS.working:
        query = query.where('finished_at', 'is', null).where('canceled_at', 'is', null).where('error_at', 'is', null);
        break;
      case undefined:
        break;
    }
    if (options.beforeId !== undefined) {
      const before = await this.findInstance(options.beforeId);
      if (!before || before.definitionId !== definitionId) throw new NotFoundError('job instance', options.beforeId);
      const at = before.createdAt;
      const beforeId = before.id;
      query = query.where((eb) => eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', beforeId)])]));
    }
    // Ids and widths first: a page of instances with 16 KiB scripts and 8 KiB env would pass a Data API response.
    const widths = rowWidths(await query.select(['id', INSTANCE_WIDTH.as('wide')]).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit).execute());
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', ids).execute());
    return rows.map(toInstance);
  }

  /** Log lines of an instance, oldest first. */
  async listLogs(instanceId: number, options: { limit: number; offset: number }): Promise<LogView[]> {
    // A line may hold 40 KiB (a command's result with its output): ids and widths first, then chunks that fit.
    const widths = rowWidths(
      await this.db
        .selectFrom('instance_logs')
        .select(['id', widthOf('message').as('wide')])
        .where('job_instance_id', '=', instanceId)
        .orderBy('created_at')
        .orderBy('id')
        .limit(options.limit)
        .offset(options.offset)
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('instance_logs').selectAll().where('id', 'in', ids).execute());
    return rows.map((r) => ({ id: fromDbInt(r.id), level: r.level, message: r.message, createdAt: fromDbTime(r.created_at) }));
  }

  /** Kuroko2's instance stats: unfinished uncanceled instances, without and with an error. */
  async instanceStats(): Promise<{ working: number; error: number }> {
    const count = async (errored: boolean) => {
      const row = await this.db
        .selectFrom('job_instances')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('finished_at', 'is', null)
        .where('canceled_at', 'is', null)
        .where('error_at', errored ? 'is not' : 'is', null)
        .executeTakeFirstOrThrow();
      return fromDbInt(row.n as number | string);
    };
    const [working, error] = await Promise.all([count(false), count(true)]);
    return { working, error };
  }

  /**
   * For every known queue (served by a worker row, declared by the deployment, or holding an unclaimed execution):
   * how many executions nobody claimed within WAITING_EXECUTION_SECONDS of their creation.
   */
  async waitingExecutions(declaredQueues: readonly string[] = []): Promise<Map<string, number>> {
    const threshold = new Date(this.clock.now().getTime() - WAITING_EXECUTION_SECONDS * MS_PER_SECOND);
    const [workers, unclaimed, late] = await Promise.all([
      this.db.selectFrom('workers').select('queues').execute(),
      this.db.selectFrom('executions').select('queue').distinct().where('claimed_at', 'is', null).where('finished_at', 'is', null).execute(),
      this.db
        .selectFrom('executions')
        .select(['queue', (eb) => eb.fn.countAll().as('n')])
        .where('claimed_at', 'is', null)
        .where('finished_at', 'is', null)
        .where('created_at', '<', threshold)
        .groupBy('queue')
        .execute(),
    ]);
    const counts = new Map<string, number>();
    for (const queue of declaredQueues) counts.set(queue, 0);
    for (const worker of workers) for (const queue of parseJsonColumn(stringArray, worker.queues, 'workers.queues')) counts.set(queue, 0);
    for (const row of unclaimed) counts.set(row.queue, 0);
    for (const row of late) counts.set(row.queue, fromDbInt(row.n as number | string));
    return counts;
  }

  /** Every worker row (or the one with `onlyId`) with its status and the executions it holds. */
  async listWorkers(onlyId?: number): Promise<WorkerView[]> {
    let workerQuery = this.db.selectFrom('workers').selectAll().orderBy('hostname').orderBy('id');
    let heldQuery = this.db.selectFrom('executions').select(['id', 'worker_id']).where('worker_id', 'is not', null).where('finished_at', 'is', null);
    if (onlyId !== undefined) {
      workerQuery = workerQuery.where('id', '=', onlyId);
      heldQuery = heldQuery.where('worker_id', '=', onlyId);
    }
    const [workers, held] = await Promise.all([workerQuery.execute(), heldQuery.execute()]);
    const liveSince = this.clock.now().getTime() - LIVE_WORKER_SECONDS * MS_PER_SECOND;
    return workers.map((w) => {
      const id = fromDbInt(w.id);
      const executionIds = held.filter((e) => e.worker_id !== null && fromDbInt(e.worker_id) === id).map((e) => fromDbInt(e.id));
      const heartbeatAt = fromDbTime(w.heartbeat_at);
      const suspended = fromDbBool(w.suspended);
      const draining = fromDbBool(w.draining);
      let status: WorkerStatus;
      if (heartbeatAt.getTime() < liveSince) status = WORKER_STATUS.lost;
      else if (draining) status = WORKER_STATUS.draining;
      else if (suspended) status = WORKER_STATUS.suspended;
      else status = executionIds.length > 0 ? WORKER_STATUS.working : WORKER_STATUS.idle;
      return {
        id,
        hostname: w.hostname,
        queues: parseJsonColumn(stringArray, w.queues, 'workers.queues'),
        slots: Number(w.slots),
        status,
        suspended,
        draining,
        heartbeatAt,
        startedAt: fromDbTime(w.started_at),
        executionIds: executionIds.sort((a, b) => a - b),
      };
    });
  }

  /** One worker, or NotFoundError. */
  async getWorker(workerId: number): Promise<WorkerView> {
    const [worker] = await this.listWorkers(workerId);
    if (!worker) throw new NotFoundError('worker', workerId);
    return worker;
  }

  /** Suspends or resumes a worker (it stops or resumes claiming at its next heartbeat); NotFoundError when unknown. */
  async setWorkerSuspended(workerId: number, suspended: boolean): Promise<WorkerView> {
    const result = await this.db
      .updateTable('workers')
      .set((eb) => ({ suspended, version: eb('version', '+', 1) }))
      .where('id', '=', workerId)
      .executeTakeFirst();
    // The version always changes, so a worker that exists is always counted as updated.
    if (Number(result.numUpdatedRows) === 0) throw new NotFoundError('worker', workerId);
    return this.getWorker(workerId);
  }

  /** Unfinished executions, oldest first, with their definition's name (joined: the console lists it; the API does not). */
  async listUnfinishedExecutions(limit: number): Promise<UnfinishedExecution[]> {
    const widths = rowWidths(
      await this.db
        .selectFrom('executions')
        .select(['id', EXECUTION_WIDTH.as('wide')])
        .where('finished_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) =>
      this.db
        .selectFrom('executions as e')
        // A left join, so a definition that is somehow gone never hides its commands from the list.
        .leftJoin('job_definitions as d', 'd.id', 'e.job_definition_id')
        .selectAll('e')
        .select('d.name as definition_name')
        .where('e.id', 'in', ids)
        .execute(),
    );
    return rows.map((row) => ({ ...executionViewOf(row), definitionName: row.definition_name }));
  }
}

/**
 * An instance's tokens and its commands, archived or not, by id; also the rows of the commands not archived yet
 * (running, or finished and awaiting their step), whose output so far the console shows.
 */
export async function readInstanceParts(
  db: Kysely<Database>,
  instanceId: number,
): Promise<{ tokens: TokenView[]; executions: ExecutionView[]; unarchived: ExecutionRow[] }> {
  // An instance may hold hundreds of tokens and commands (parallel_fork): each list is read ids and widths first,
  // then in chunks that fit a Data API response.
  const ofInstance = <T extends 'tokens' | 'executions' | 'execution_histories'>(table: T, width: ReturnType<typeof widthOf>) =>
    scanWidths((afterId, limit) =>
      db
        .selectFrom(table as 'tokens')
        .select(['id', width.as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
  const [tokenWidths, executionWidths, historyWidths] = await Promise.all([
    ofInstance('tokens', widthOf('path', 'message')),
    ofInstance('executions', EXECUTION_WIDTH),
    ofInstance('execution_histories', widthOf('shell', 'hostname')),
  ]);
  const [tokens, unarchived, done] = await Promise.all([
    readByWidth(tokenWidths, (ids) => db.selectFrom('tokens').select(['id', 'parent_id', 'path', 'status', 'message']).where('id', 'in', ids).execute()),
    readByWidth(executionWidths, (ids) => db.selectFrom('executions').selectAll().where('id', 'in', ids).execute()),
    readByWidth(historyWidths, (ids) => db.selectFrom('execution_histories').selectAll().where('id', 'in', ids).execute()),
  ]);
  const executions: ExecutionView[] = [
    ...done.map((h) => ({
      id: fromDbInt(h.execution_id),
      tokenId: fromDbInt(h.token_id),
      instanceId: fromDbInt(h.job_instance_id),
      definitionId: fromDbInt(h.job_definition_id),
      queue: h.queue,
      shell: h.shell,
      pid: h.pid === null ? null : Number(h.pid),
      hostname: h.hostname,
      workerId: h.worker_id === null ? null : fromDbInt(h.worker_id),
      createdAt: null,
      claimedAt: null,
      startedAt: fromNullableDbTime(h.started_at),
      finishedAt: fromDbTime(h.finished_at),
      exitStatus: h.exit_status === null ? null : Number(h.exit_status),
      termSignal: h.term_signal,
    })),
    ...unarchived.map(executionViewOf),
  ];
  executions.sort((a, b) => a.id - b.id);
  return {
    tokens: tokens.map((t) => ({
      id: fromDbInt(t.id),
      parentId: t.parent_id === null ? null : fromDbInt(t.parent_id),
      path: t.path,
      status: t.status,
      message: t.message,
    })),
    executions,
    unarchived,
  };
}

function executionViewOf(e: ExecutionRow): ExecutionView {
  return {
    id: fromDbInt(e.id),
    tokenId: fromDbInt(e.token_id),
    instanceId: fromDbInt(e.job_instance_id),
    definitionId: fromDbInt(e.job_definition_id),
    queue: e.queue,
    shell: e.shell,
    pid: e.pid === null ? null : Number(e.pid),
    hostname: e.hostname,
    workerId: e.worker_id === null ? null : fromDbInt(e.worker_id),
    createdAt: fromDbTime(e.created_at),
    claimedAt: fromNullableDbTime(e.claimed_at),
    startedAt: fromNullableDbTime(e.started_at),
    finishedAt: fromNullableDbTime(e.finished_at),
    exitStatus: e.exit_status === null ? null : Number(e.exit_status),
    termSignal: e.term_signal,
  };
}
