import { EVENT_TYPE, type Definition, type EventRecord } from '../model';
import type { Clock, IdGenerator, LaunchRequest } from '../ports';
import { isSuspended, nextFireTime, parseCron, planSlots, scheduledLaunchedBy, slotsBetween, type CronExpression } from '../schedule';

/** What a scheduler pass needs of a definition (its description and script are not read). */
export type SchedulableDefinition = Pick<Definition, 'id' | 'name' | 'timeZone' | 'suspended' | 'catchUpWindowMinutes' | 'createdAt'>;

/** A definition with its launch and suspend schedules. */
export interface ScheduledDefinition {
  definition: SchedulableDefinition;
  crons: readonly string[];
  suspendCrons: readonly string[];
}

/** A schedule's next slot, as computed by a pass. */
export interface NextFire {
  definitionId: number;
  cron: string;
  at: Date;
}

/** The next fire time of a schedule that never fires (an invalid cron, or a date that never comes). */
export const NEVER_FIRES = new Date('9999-12-31T23:59:59.000Z');

/**
 * Definitions edited this long before the last pass are looked at again: a writer's clock a little behind the
 * scheduler's still has its time zone change seen.
 */
export const EDIT_MARGIN_MS = 5 * 60_000;

/** Due schedules read per page. */
export const DUE_PAGE = 400;
/** Pages one pass takes at most (the next pass continues). */
const MAX_DUE_PAGES = 100;

/** One cron slot of one definition: the launch key of invariant 2. */
export interface SlotKey {
  definitionId: number;
  scheduledAt: Date;
  cron: string;
}

export const SLOT_OUTCOME = { launched: 'launched', missed: 'missed', skipped: 'skipped' } as const;
export type SlotOutcome = (typeof SLOT_OUTCOME)[keyof typeof SLOT_OUTCOME];

/** The scheduler's view of the store. */
export interface SchedulerStore {
  /** Reads the time of the last pass and moves it forward to `now` (never back); undefined on the very first pass. */
  advanceLastPass(now: Date): Promise<Date | undefined>;
  listScheduledDefinitions(): Promise<ScheduledDefinition[]>;
  /** Makes the schedules of definitions edited at or after `since` due (a new time zone moves their slots). */
  reopenEdited(since: Date): Promise<void>;
  /**
   * Up to `limit` schedules due at `now` (next fire time reached, or not computed yet), grouped by definition (each
   * with only those schedules as `crons`, and all its suspend schedules).
   */
  listDueDefinitions(now: Date, limit: number): Promise<ScheduledDefinition[]>;
  /** Records each schedule's next fire time. */
  setNextFires(fires: readonly NextFire[]): Promise<void>;
  /** Records the slot and launches it in one transaction; false when the slot was already recorded. */
  launchSlot(slot: SlotKey, request: LaunchRequest): Promise<boolean>;
  /** Records a slot that will not launch, with its event if any; false when the slot was already recorded. */
  recordSlot(slot: SlotKey, outcome: Exclude<SlotOutcome, 'launched'>, event: EventRecord | undefined): Promise<boolean>;
}

export interface SchedulerPassResult {
  launched: number;
  missed: number;
  skipped: number;
  /** Slots another scheduler had already recorded. */
  duplicates: number;
}

/** How far back the very first pass looks (no back-filling beyond one tick, like Kuroko2). */
export const FIRST_PASS_LOOKBACK_MS = 60_000;

/**
 * One scheduler pass: every cron slot in (last pass, now] is launched, missed or skipped (D9), each recorded
 * under a unique key so that two schedulers running at once never launch a slot twice. Only the schedules whose
 * next fire time has come are read (and those of definitions edited since the last pass); each gets its next fire
 * time after now. A schedule is due at its first slot after the time its next fire was computed, which is no later
 * than the last pass, so every slot in (last pass, now] belongs to a due schedule.
 */
export async function runSchedulerPass(store: SchedulerStore, clock: Clock, ids: IdGenerator): Promise<SchedulerPassResult> {
  const now = clock.now();
  const last = (await store.advanceLastPass(now)) ?? new Date(now.getTime() - FIRST_PASS_LOOKBACK_MS);
  const result: SchedulerPassResult = { launched: 0, missed: 0, skipped: 0, duplicates: 0 };
  if (last >= now) return result;
  await store.reopenEdited(new Date(last.getTime() - EDIT_MARGIN_MS));
  // Each page's schedules get their next fire time after now, so the next read returns the following ones.
  for (let page = 0; page < MAX_DUE_PAGES; page++) {
    const due = await store.listDueDefinitions(now, DUE_PAGE);
    await planDue(due, store, ids, now, last, result);
    if (due.reduce((n, d) => n + d.crons.length, 0) < DUE_PAGE) break;
  }
  return result;
}

async function planDue(
  due: readonly ScheduledDefinition[],
  store: SchedulerStore,
  ids: IdGenerator,
  now: Date,
  last: Date,
  result: SchedulerPassResult,
): Promise<void> {
  const nextFires: NextFire[] = [];
  for (const scheduled of due) {
    const { definition } = scheduled;
    // A definition created mid-window has no slots before it existed.
    const from = last > definition.createdAt ? last : definition.createdAt;
    const suspendCrons = parsedCrons(scheduled.suspendCrons);
    for (const [cronText, cron] of scheduled.crons.map((c) => [c, parseCron(c)] as const)) {
      nextFires.push({ definitionId: definition.id, cron: cronText, at: (cron.ok ? nextFireTime(cron.cron, now, definition.timeZone) : undefined) ?? NEVER_FIRES });
      if (!cron.ok) continue;
      const plan = planSlots({
        slots: slotsBetween(cron.cron, from, now, definition.timeZone),
        now,
        catchUpWindowMinutes: definition.catchUpWindowMinutes,
        suspended: definition.suspended,
        isSuspendedSlot: (slot) => isSuspended(suspendCrons, slot, definition.timeZone),
      });
      for (const scheduledAt of plan.launch) {
        const request: LaunchRequest = {
          instanceId: await ids.nextId(),
          definitionId: definition.id,
          launchedBy: scheduledLaunchedBy(definition, scheduledAt, cronText, definition.timeZone),
          scheduled: true,
        };
        const fresh = await store.launchSlot({ definitionId: definition.id, scheduledAt, cron: cronText }, request);
        if (fresh) result.launched++;
        else result.duplicates++;
      }
      for (const scheduledAt of plan.missed) {
        const message = `The slot of \`${cronText}\` at ${scheduledAt.toISOString()} was missed: the scheduler did not run in time.`;
        const event: EventRecord = {
          id: await ids.nextId(),
          type: EVENT_TYPE.missedSlot,
          instanceId: null,
          definitionId: definition.id,
          tokenId: null,
          message,
          createdAt: now,
        };
        if (await store.recordSlot({ definitionId: definition.id, scheduledAt, cron: cronText }, SLOT_OUTCOME.missed, event)) result.missed++;
        else result.duplicates++;
      }
      for (const scheduledAt of plan.skipped) {
        if (await store.recordSlot({ definitionId: definition.id, scheduledAt, cron: cronText }, SLOT_OUTCOME.skipped, undefined)) result.skipped++;
        else result.duplicates++;
      }
    }
  }
  await store.setNextFires(nextFires);
}

function parsedCrons(texts: readonly string[]): CronExpression[] {
  return texts.flatMap((text) => {
    const parsed = parseCron(text);
    return parsed.ok ? [parsed.cron] : [];
  });
}
