/**
 * The retention pass's store: picks expired instances by the job_instances(finished_at) / (canceled_at) indexes
 * (migration 0008) and deletes one small batch per short transaction, children before parents:
 * event deliveries, events, process signals, memory samples, execution histories, log lines, executions, tokens,
 * then the instances; schedule slots keep their launch key and lose the instance id.
 *
 * Within the Data API's limits (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.html):
 * statements carry at most MAX_RETENTION_BATCH_SIZE ids (well under the 64 KiB of SQL text), and the only
 * rows read back are ids, paged by EXECUTION_ID_PAGE so no response nears 1 MiB.
 *
 * Rows left as they are: alerts (keyed by a text subject, raised once; a handful a month) and kuroko2_imports
 * (the provenance marks keep a second import from bringing deleted instances back).
 */
import type { Kysely, Transaction } from 'kysely';
import {
  MAX_RETENTION_BATCH_SIZE,
  type DefinitionRetention,
  type RetentionBatchResult,
  type RetentionRule,
  type RetentionStore,
} from '../../core/services/retention-service';
import { fromDbInt, fromDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';

/** The scheduler_state row holding when the last retention pass started (core/services/retention-service.ts isRetentionDue). */
export const RETENTION_STATE_NAME = 'retention';

/** Execution ids read per query while collecting a batch's command outputs. */
const EXECUTION_ID_PAGE = 5_000;

export class RetentionRepository implements RetentionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** When the last pass started; undefined before the first. */
  async lastPassStartedAt(): Promise<Date | undefined> {
    const row = await this.db.selectFrom('scheduler_state').select('last_pass_at').where('name', '=', RETENTION_STATE_NAME).executeTakeFirst();
    return row ? fromDbTime(row.last_pass_at) : undefined;
  }

  /** Records that a pass starts now (before it deletes anything, so a pass started meanwhile is not started twice). */
  async recordPassStart(now: Date): Promise<void> {
    const updated = await this.db
      .updateTable('scheduler_state')
      .set({ last_pass_at: now, updated_at: now })
      .where('name', '=', RETENTION_STATE_NAME)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return;
    try {
      await this.db.insertInto('scheduler_state').values({ name: RETENTION_STATE_NAME, last_pass_at: now, updated_at: now }).execute();
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
  }

  async listRetentionOverrides(): Promise<DefinitionRetention[]> {
    const rows = await this.db.selectFrom('job_definitions').select(['id', 'retention_days']).where('retention_days', 'is not', null).execute();
    return rows.map((r) => ({ definitionId: fromDbInt(r.id), retentionDays: r.retention_days === null ? null : fromDbInt(r.retention_days) }));
  }

  async selectExpiredInstances(rule: RetentionRule, limit: number): Promise<number[]> {
    checkLimit(limit);
    const base = () => {
      const q = this.db
        .selectFrom('job_instances as i')
        .leftJoin('job_definitions as d', 'd.id', 'i.job_definition_id')
        .select(['i.id'])
        // An instance ends after it was created: this bound lets the (definition, created_at) index narrow too.
        .where('i.created_at', '<', rule.cutoff);
      // Definitions with their own setting have their own rule; an instance whose definition is gone follows the
      // global one.
      return rule.definitionId === undefined ? q.where('d.retention_days', 'is', null) : q.where('i.job_definition_id', '=', rule.definitionId);
    };
    const finished = await base().where('i.finished_at', '<', rule.cutoff).orderBy('i.finished_at').limit(limit).execute();
    const ids = finished.map((r) => fromDbInt(r.id));
    if (ids.length < limit) {
      const canceled = await base()
        .where('i.canceled_at', '<', rule.cutoff)
        .where('i.finished_at', 'is', null)
        .orderBy('i.canceled_at')
        .limit(limit - ids.length)
        .execute();
      ids.push(...canceled.map((r) => fromDbInt(r.id)));
    }
    return ids;
  }

  async deleteInstances(instanceIds: readonly number[]): Promise<RetentionBatchResult> {
    checkLimit(instanceIds.length);
    if (instanceIds.length === 0) return { instances: 0, executionIds: [] };
    return this.db.transaction().execute(async (trx) => {
      // Only instances that are still ended: one retried or resumed since it was picked stays.
      const ended = await trx
        .selectFrom('job_instances')
        .select('id')
        .where('id', 'in', [...instanceIds])
        .where((eb) => eb.or([eb('finished_at', 'is not', null), eb('canceled_at', 'is not', null)]))
        .execute();
      const ids = ended.map((r) => fromDbInt(r.id));
      if (ids.length === 0) return { instances: 0, executionIds: [] };
      const executionIds = await collectExecutionIds(trx, ids);

      await trx
        .deleteFrom('event_deliveries')
        .where('event_id', 'in', trx.selectFrom('events').select('id').where('job_instance_id', 'in', ids))
        .execute();
      await trx.deleteFrom('events').where('job_instance_id', 'in', ids).execute();
      await trx
        .deleteFrom('process_signals')
        .where('execution_id', 'in', trx.selectFrom('executions').select('id').where('job_instance_id', 'in', ids))
        .execute();
      await trx.deleteFrom('memory_samples').where('job_instance_id', 'in', ids).execute();
      await trx.deleteFrom('execution_histories').where('job_instance_id', 'in', ids).execute();
      await trx.deleteFrom('instance_logs').where('job_instance_id', 'in', ids).execute();
      await trx.deleteFrom('executions').where('job_instance_id', 'in', ids).execute();
      await trx.deleteFrom('tokens').where('job_instance_id', 'in', ids).execute();
      // The slot stays: it is the launch key that stops the scheduler from launching that slot again.
      await trx.updateTable('schedule_slots').set({ job_instance_id: null }).where('job_instance_id', 'in', ids).execute();
      await trx.deleteFrom('job_instances').where('id', 'in', ids).execute();
      return { instances: ids.length, executionIds };
    });
  }
}

function checkLimit(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_RETENTION_BATCH_SIZE) {
    throw new RangeError(`a retention batch holds at most ${MAX_RETENTION_BATCH_SIZE} instances, got ${n}`);
  }
}

/** Ids of the executions of the instances, live rows and histories, read a page at a time. */
async function collectExecutionIds(trx: Transaction<Database>, instanceIds: number[]): Promise<number[]> {
  const out = new Set<number>();
  for (const table of ['executions', 'execution_histories'] as const) {
    const column = table === 'executions' ? 'id' : 'execution_id';
    let after = -1;
    for (;;) {
      const rows = await trx
        .selectFrom(table)
        .select(`${column} as eid`)
        .where('job_instance_id', 'in', instanceIds)
        .where(column, '>', after)
        .orderBy(column)
        .limit(EXECUTION_ID_PAGE)
        .execute();
      for (const r of rows) out.add(fromDbInt(r.eid));
      if (rows.length < EXECUTION_ID_PAGE) break;
      after = fromDbInt(rows[rows.length - 1]!.eid);
    }
  }
  return [...out].sort((a, b) => a - b);
}
