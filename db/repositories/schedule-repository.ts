import type { Kysely, Selectable } from 'kysely';
import type { EventRecord } from '../../core/model';
import type { Clock, IdGenerator, LaunchRequest } from '../../core/ports';
import { NEVER_FIRES, type NextFire, type ScheduledDefinition, type SchedulerStore, type SlotKey, type SlotOutcome } from '../../core/services/scheduler-service';
import { fromDbBool, fromDbInt, fromDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';
import { chunked } from './paging';
import type { LaunchRepository } from './launch-repository';
import { insertEvents } from './log-event-writer';
import { withTransaction } from './transaction';
import { readSchedules } from './definition-records';

/** The single scheduler_state row the scheduler's high-water mark lives in. */
const SCHEDULER_STATE_NAME = 'scheduler';

/**
 * Definitions per page of the scheduler's read. A row of the columns it reads is at most about 1 KB (a 180-character
 * name of 4-byte characters, a time zone, numbers, the JSON around them), so a page stays within
 * RESPONSE_BUDGET_BYTES, and its IN lists within IN_LIST_MAX ids (db/repositories/paging.ts).
 */
const SCHEDULED_PAGE = 400;

/** The columns of a definition a pass reads. */
const SCHEDULABLE_COLUMNS = ['id', 'name', 'time_zone', 'suspended', 'catch_up_window_minutes', 'created_at'] as const;

type SchedulableRow = Pick<Selectable<Database['job_definitions']>, (typeof SCHEDULABLE_COLUMNS)[number]>;

function schedulable(row: SchedulableRow): ScheduledDefinition['definition'] {
  return {
    id: fromDbInt(row.id),
    name: row.name,
    timeZone: row.time_zone,
    suspended: fromDbBool(row.suspended),
    catchUpWindowMinutes: Number(row.catch_up_window_minutes),
    createdAt: fromDbTime(row.created_at),
  };
}

/** Thrown inside a transaction to roll it back when the slot was already recorded. */
class SlotTaken extends Error {}

/** The scheduler's store: its high-water mark, the definitions with schedules, and the slot launch key. */
/** Schedules one UPDATE sets: each is two parameters and a short OR term of SQL text. */
const NEXT_FIRES_PER_STATEMENT = 200;

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

  /**
   * The definitions having a schedule, with their schedules, SCHEDULED_PAGE definitions per page: only the columns a
   * pass needs (no description or script), short IN lists, and schedule pages of bounded size, so every statement
   * stays within the Data API's limits at any number of definitions.
   */
  async listScheduledDefinitions(): Promise<ScheduledDefinition[]> {
    const out: ScheduledDefinition[] = [];
    let afterId = 0;
    for (;;) {
      const rows = await this.db
        .selectFrom('job_definitions')
        .select(SCHEDULABLE_COLUMNS)
        .where('id', '>', afterId)
        .where((eb) => eb.exists(eb.selectFrom('job_schedules').select('job_schedules.id').whereRef('job_schedules.job_definition_id', '=', 'job_definitions.id')))
        .orderBy('id')
        .limit(SCHEDULED_PAGE)
        .execute();
      if (rows.length === 0) break;
      const ids = rows.map((row) => fromDbInt(row.id));
      const [crons, suspends] = await Promise.all([readSchedules(this.db, 'job_schedules', ids), readSchedules(this.db, 'job_suspend_schedules', ids)]);
      for (const row of rows) {
        const id = fromDbInt(row.id);
        out.push({
          definition: schedulable(row),
          crons: crons.get(id) ?? [],
          suspendCrons: suspends.get(id) ?? [],
        });
      }
      if (rows.length < SCHEDULED_PAGE) break;
      afterId = ids[ids.length - 1] ?? afterId;
    }
    return out;
  }

  async reopenEdited(since: Date): Promise<void> {
    const edited = await this.db.selectFrom('job_definitions').select('id').where('updated_at', '>=', since).execute();
    for (const chunk of chunked(edited.map((row) => fromDbInt(row.id)))) {
      await this.db.updateTable('job_schedules').set({ next_fire_at: null }).where('job_definition_id', 'in', chunk).execute();
    }
  }

  async listDueDefinitions(now: Date, limit: number): Promise<ScheduledDefinition[]> {
    // By index (job_schedules_next_fire_idx): the due schedules only; a pass with nothing due reads no definition.
    const due = await this.db
      .selectFrom('job_schedules')
      .select(['id', 'job_definition_id', 'cron'])
      .where((eb) => eb.or([eb('next_fire_at', 'is', null), eb('next_fire_at', '<=', now)]))
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    const crons = new Map<number, string[]>();
    for (const row of due) {
      const id = fromDbInt(row.job_definition_id);
      crons.set(id, [...(crons.get(id) ?? []), row.cron]);
    }
    const ids = [...crons.keys()];
    const [rows, suspends] = await Promise.all([
      this.db.selectFrom('job_definitions').select(SCHEDULABLE_COLUMNS).where('id', 'in', ids).orderBy('id').execute(),
      readSchedules(this.db, 'job_suspend_schedules', ids),
    ]);
    const found = new Set(rows.map((row) => fromDbInt(row.id)));
    // A schedule left by a definition deleted meanwhile never fires: it must not stay due.
    const orphans = due.filter((row) => !found.has(fromDbInt(row.job_definition_id))).map((row) => fromDbInt(row.id));
    if (orphans.length > 0) await this.db.updateTable('job_schedules').set({ next_fire_at: NEVER_FIRES }).where('id', 'in', orphans).execute();
    return rows.map((row) => {
      const id = fromDbInt(row.id);
      return { definition: schedulable(row), crons: crons.get(id) ?? [], suspendCrons: suspends.get(id) ?? [] };
    });
  }

  async setNextFires(fires: readonly NextFire[]): Promise<void> {
    // Schedules that fire at the same time share one UPDATE (same crons, the common case), in chunks that keep the
    // SQL text well within the Data API's limit: a first pass over 20,000 schedules was 20,000 statements.
    const byTime = new Map<number, NextFire[]>();
    for (const fire of fires) {
      const same = byTime.get(fire.at.getTime());
      if (same) same.push(fire);
      else byTime.set(fire.at.getTime(), [fire]);
    }
    for (const same of byTime.values()) {
      for (const chunk of chunked(same, NEXT_FIRES_PER_STATEMENT)) {
        await this.db
          .updateTable('job_schedules')
          .set({ next_fire_at: chunk[0]!.at })
          .where((eb) => eb.or(chunk.map((f) => eb.and([eb('job_definition_id', '=', f.definitionId), eb('cron', '=', f.cron)]))))
          .execute();
      }
    }
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
