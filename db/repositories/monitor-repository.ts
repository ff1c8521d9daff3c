/**
 * The monitor's store: reads of workers, executions, instances in error and memory samples, and the one write
 * that raises an alert (alert row, lost executions, log lines and events in one transaction; the alerts table's
 * unique (kind, subject) makes each alert happen once, whichever monitor gets there first).
 */
import type { Expression, ExpressionBuilder, Kysely, SqlBool } from 'kysely';
import * as z from 'zod/mini';
import type { Execution, Instance } from '../../core/model';
import type { IdGenerator } from '../../core/ports';
import {
  ABSENCE_OBSERVATION_KIND,
  type AlertPlan,
  type MemoryPeak,
  type MonitorStore,
  type WorkerState,
} from '../../core/services/monitor-service';
import { fromDbBool, fromDbInt, fromDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database, WorkerRow } from '../schema';
import type { Kuroko2ImportTables } from './kuroko2-import-repository';
import { insertEvents, insertLogs } from './log-event-writer';
import { EXECUTION_WIDTH, INSTANCE_WIDTH, chunked, readByWidth, readInChunks, scanWidths } from './paging';
import { toExecution, toInstance } from './row-mappers';
import { withTransaction } from './transaction';

/** The heartbeat's `pids` column: execution id -> pid. */
const pidsSchema = z.record(z.string(), z.number());

/** Thrown inside the alert transaction to roll it back when there is nothing to raise after all. */
class NothingToRaise extends Error {}

/** Maps a workers row to what the monitor judges it by. */
export function toWorkerState(row: WorkerRow): WorkerState {
  let listed: Set<number> | undefined;
  try {
    const parsed = pidsSchema.safeParse(JSON.parse(row.pids));
    if (parsed.success) listed = new Set(Object.keys(parsed.data).map(Number));
  } catch {
    listed = undefined;
  }
  return {
    id: fromDbInt(row.id),
    hostname: row.hostname,
    heartbeatAt: fromDbTime(row.heartbeat_at),
    startedAt: fromDbTime(row.started_at),
    draining: fromDbBool(row.draining),
    listedExecutionIds: listed,
  };
}

function toMemoryPeak(row: { job_instance_id: number; job_definition_id: number; max_rss_kb: number | string | bigint }): MemoryPeak {
  return { instanceId: fromDbInt(row.job_instance_id), definitionId: fromDbInt(row.job_definition_id), maxRssKb: fromDbInt(row.max_rss_kb) };
}

/** The monitor's reads and its alert write on the database. */
export class MonitorRepository implements MonitorStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
  ) {}

  async findWorkers(): Promise<WorkerState[]> {
    const rows = await this.db.selectFrom('workers').selectAll().execute();
    return rows.map(toWorkerState);
  }

  async findUnfinishedExecutionsOfWorkers(workerIds: readonly number[]): Promise<Execution[]> {
    const found = await readInChunks(workerIds, (chunk) =>
      this.executionsWhere((eb) => eb.and([eb('worker_id', 'in', chunk), eb('finished_at', 'is', null)])),
    );
    return found.sort((a, b) => a.id - b.id);
  }

  async findRunningExecutions(): Promise<Execution[]> {
    return this.executionsWhere((eb) => eb.and([eb('pid', 'is not', null), eb('worker_id', 'is not', null), eb('finished_at', 'is', null)]));
  }

  async findUnclaimedExecutions(createdBefore: Date): Promise<Execution[]> {
    return this.executionsWhere((eb) => eb.and([eb('claimed_at', 'is', null), eb('finished_at', 'is', null), eb('created_at', '<=', createdBefore)]));
  }

  async findClaimedWithoutPid(claimedBefore: Date): Promise<Execution[]> {
    return this.executionsWhere((eb) =>
      eb.and([eb('claimed_at', 'is not', null), eb('claimed_at', '<=', claimedBefore), eb('pid', 'is', null), eb('finished_at', 'is', null)]),
    );
  }

  async findInstancesInErrorSince(errorBefore: Date): Promise<Instance[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.inError().select(['id', INSTANCE_WIDTH.as('wide')]).where('error_at', '<=', errorBefore).where('id', '>', afterId).orderBy('id').limit(limit).execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', ids).execute())).map(toInstance);
  }

  /** error_at of every instance still in error: idle sleep wakes the engine for their reminders. */
  async errorTimes(): Promise<Date[]> {
    const rows = await this.inError().select('error_at').execute();
    return rows.flatMap((r) => (r.error_at === null ? [] : [fromDbTime(r.error_at)]));
  }

  /**
   * The unfinished-or-not executions `filter` selects, in id order: ids and widths first, a page at a time, then the
   * rows in chunks that fit a Data API response whatever their command and output hold.
   */
  private async executionsWhere(filter: (eb: ExpressionBuilder<Database, 'executions'>) => Expression<SqlBool>): Promise<Execution[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.db.selectFrom('executions').select(['id', EXECUTION_WIDTH.as('wide')]).where(filter).where('id', '>', afterId).orderBy('id').limit(limit).execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('executions').selectAll().where('id', 'in', ids).execute())).map(toExecution);
  }

  /** Instances in error that nobody finished or canceled: the ones reminded about. */
  private inError() {
    return this.db.selectFrom('job_instances').where('error_at', 'is not', null).where('finished_at', 'is', null).where('canceled_at', 'is', null);
  }

  async findRecentMemoryPeaks(since: Date): Promise<MemoryPeak[]> {
    const recent = this.db.selectFrom('memory_samples').select('job_instance_id').where('sampled_at', '>=', since);
    const rows = await this.db
      .selectFrom('memory_samples')
      .select((eb) => ['job_instance_id', 'job_definition_id', eb.fn.max('rss_kb').as('max_rss_kb')])
      .where('job_instance_id', 'in', recent)
      .groupBy(['job_instance_id', 'job_definition_id'])
      .execute();
    return rows.map(toMemoryPeak);
  }

  /**
   * Also the memory expectancy an import from Kuroko2 brought (migration 0007), as the peak of an instance with id 0
   * (no real instance has it), so a definition's alerts continue from what Kuroko2 had learnt.
   */
  async findMemoryPeaksOfDefinitions(definitionIds: readonly number[]): Promise<MemoryPeak[]> {
    // Chunks keep the IN list short; each peak row is three numbers, so a chunk's answer is small.
    const [rows, expectancies] = await Promise.all([
      readInChunks(definitionIds, (chunk) =>
        this.db
          .selectFrom('memory_samples')
          .select((eb) => ['job_instance_id', 'job_definition_id', eb.fn.max('rss_kb').as('max_rss_kb')])
          .where('job_definition_id', 'in', chunk)
          .groupBy(['job_instance_id', 'job_definition_id'])
          .execute(),
      ),
      readInChunks(definitionIds, (chunk) =>
        this.db
          .withTables<Kuroko2ImportTables>()
          .selectFrom('memory_expectancies')
          .select(['job_definition_id', 'expected_kb'])
          .where('job_definition_id', 'in', chunk)
          .execute(),
      ),
    ]);
    const imported = expectancies.map((e) => ({ job_instance_id: 0, job_definition_id: e.job_definition_id, max_rss_kb: e.expected_kb }));
    return [...rows, ...imported].map(toMemoryPeak);
  }

  async findRaisedSubjects(kind: string, subjects: readonly string[]): Promise<Set<string>> {
    const rows = await readInChunks(subjects, (chunk) => this.db.selectFrom('alerts').select('subject').where('kind', '=', kind).where('subject', 'in', chunk).execute());
    return new Set(rows.map((r) => r.subject));
  }

  async findAbsenceObservations(): Promise<Map<string, Date>> {
    const rows = await this.db.selectFrom('alerts').select(['subject', 'raised_at']).where('kind', '=', ABSENCE_OBSERVATION_KIND).execute();
    return new Map(rows.map((r) => [r.subject, fromDbTime(r.raised_at)]));
  }

  async recordAbsenceObservation(subject: string, at: Date): Promise<void> {
    try {
      await this.db
        .insertInto('alerts')
        .values({ id: await this.ids.nextId(), kind: ABSENCE_OBSERVATION_KIND, subject, raised_at: at })
        .execute();
    } catch (error) {
      // Another monitor saw it first; its time counts.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }

  async clearAbsenceObservations(subjects: readonly string[]): Promise<void> {
    for (const chunk of chunked(subjects)) {
      await this.db.deleteFrom('alerts').where('kind', '=', ABSENCE_OBSERVATION_KIND).where('subject', 'in', chunk).execute();
    }
  }

  async raiseAlert(plan: AlertPlan): Promise<{ raised: boolean; lost: number }> {
    const logCount = plan.logs.length + plan.losses.reduce((n, l) => n + l.logs.length, 0);
    try {
      return await withTransaction(this.db, this.ids, logCount + 1, async (trx) => {
        // The unique (kind, subject) key: a second monitor's insert fails here and rolls its whole alert back.
        await trx
          .insertInto('alerts')
          .values({ id: await this.ids.nextId(), kind: plan.kind, subject: plan.subject, raised_at: plan.raisedAt })
          .execute();
        const logs = [...plan.logs];
        const events = [...plan.events];
        let lost = 0;
        for (const loss of plan.losses) {
          // Fenced on the attempt and on the finish: an agent that finished (or a newer attempt) wins.
          const result = await trx
            .updateTable('executions')
            .set({ finished_at: plan.raisedAt, exit_status: null, lost_reason: loss.reason })
            .where('id', '=', loss.executionId)
            .where('attempt', '=', loss.attempt)
            .where('finished_at', 'is', null)
            .executeTakeFirst();
          if (Number(result.numUpdatedRows) !== 1) continue;
          lost++;
          logs.push(...loss.logs);
          events.push(...loss.events);
        }
        if (lost === 0 && plan.requireLoss) throw new NothingToRaise();
        if (lost === 0) events.push(...plan.fallbackEvents);
        await insertLogs(trx, this.ids, logs);
        await insertEvents(trx, events);
        return { raised: true, lost };
      });
    } catch (error) {
      if (error instanceof NothingToRaise || isDuplicateKeyError(error)) return { raised: false, lost: 0 };
      throw error;
    }
  }
}
