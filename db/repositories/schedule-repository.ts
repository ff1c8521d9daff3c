import type { Kysely } from 'kysely';
import type { EventRecord } from '../../core/model';
import type { Clock, IdGenerator, LaunchRequest } from '../../core/ports';
import type { ScheduledDefinition, SchedulerStore, SlotKey, SlotOutcome } from '../../core/services/scheduler-service';
import { fromDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';
import type { LaunchRepository } from './launch-repository';
import { insertEvents } from './log-event-writer';
import { withTransaction } from './transaction';
import { toDefinition } from './row-mappers';

/** The single scheduler_state row the scheduler's high-water mark lives in. */
const SCHEDULER_STATE_NAME = 'scheduler';

/** Thrown inside a transaction to roll it back when the slot was already recorded. */
class SlotTaken extends Error {}

/** The scheduler's store: its high-water mark, the definitions with schedules, and the slot launch key. */
export class ScheduleRepository implements SchedulerStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly launches: LaunchRepository,
  ) {}

  async advanceLastPass(now: Date): Promise<Date | undefined> {
    const row = await this.db.selectFrom('scheduler_state').select('last_pass_at').where('name', '=', SCHEDULER_STATE_NAME).executeTakeFirst();
    if (!row) {
      try {
        await this.db.insertInto('scheduler_state').values({ name: SCHEDULER_STATE_NAME, last_pass_at: now, updated_at: now }).execute();
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
      return undefined;
    }
    const last = fromDbTime(row.last_pass_at);
    // Monotonic: a scheduler with a lagging clock never moves the mark back. Two schedulers may read the same
    // mark; the slot key makes their overlapping slots harmless.
    await this.db
      .updateTable('scheduler_state')
      .set({ last_pass_at: now, updated_at: now })
      .where('name', '=', SCHEDULER_STATE_NAME)
      .where('last_pass_at', '<', now)
      .execute();
    return last;
  }

  async listScheduledDefinitions(): Promise<ScheduledDefinition[]> {
    const schedules = await this.db.selectFrom('job_schedules').select(['job_definition_id', 'cron']).orderBy('id').execute();
    if (schedules.length === 0) return [];
    const definitionIds = [...new Set(schedules.map((s) => Number(s.job_definition_id)))];
    const [definitions, suspends] = await Promise.all([
      this.db.selectFrom('job_definitions').selectAll().where('id', 'in', definitionIds).orderBy('id').execute(),
      this.db.selectFrom('job_suspend_schedules').select(['job_definition_id', 'cron']).where('job_definition_id', 'in', definitionIds).execute(),
    ]);
    return definitions.map((row) => {
      const id = Number(row.id);
      return {
        definition: toDefinition(row),
        crons: schedules.filter((s) => Number(s.job_definition_id) === id).map((s) => s.cron),
        suspendCrons: suspends.filter((s) => Number(s.job_definition_id) === id).map((s) => s.cron),
      };
    });
  }

  async launchSlot(slot: SlotKey, request: LaunchRequest): Promise<boolean> {
    try {
      await withTransaction(this.db, this.ids, 0, async (trx) => {
        try {
          await trx.insertInto('schedule_slots').values(await this.slotRow(slot, 'launched', request.instanceId)).execute();
        } catch (error) {
          if (isDuplicateKeyError(error)) throw new SlotTaken();
          throw error;
        }
        await this.launches.launchIn(trx, request);
      });
      return true;
    } catch (error) {
      if (error instanceof SlotTaken) return false;
      throw error;
    }
  }

  async recordSlot(slot: SlotKey, outcome: Exclude<SlotOutcome, 'launched'>, event: EventRecord | undefined): Promise<boolean> {
    try {
      await withTransaction(this.db, this.ids, 0, async (trx) => {
        try {
          await trx.insertInto('schedule_slots').values(await this.slotRow(slot, outcome, null)).execute();
        } catch (error) {
          if (isDuplicateKeyError(error)) throw new SlotTaken();
          throw error;
        }
        if (event) await insertEvents(trx, [event]);
      });
      return true;
    } catch (error) {
      if (error instanceof SlotTaken) return false;
      throw error;
    }
  }

  private async slotRow(slot: SlotKey, outcome: SlotOutcome, instanceId: number | null) {
    return {
      id: await this.ids.nextId(),
      job_definition_id: slot.definitionId,
      scheduled_at: slot.scheduledAt,
      cron: slot.cron,
      outcome,
      job_instance_id: instanceId,
      created_at: this.clock.now(),
    };
  }
}
