/** Catch-up after scheduler downtime (D9): which due cron slots launch, which are missed, which are skipped. */
import { ValidationError } from '../errors';
import { MS_PER_MINUTE } from './time-zone';

/** The due slots of one cron schedule and what decides their fate. */
export interface SlotPlanInput {
  /** Slots of one cron in `(last pass, now]`, ascending (`slotsBetween`). */
  slots: readonly Date[];
  now: Date;
  /** How late a slot may still launch, in whole minutes; 0 launches only a slot of the current minute. */
  catchUpWindowMinutes: number;
  /** The definition's `suspended` flag. */
  suspended: boolean;
  /** True when the slot falls on a suspend-cron minute (`isSuspended`). */
  isSuspendedSlot: (slot: Date) => boolean;
}

/** Every input slot lands in exactly one list, each in ascending order. */
export interface SlotPlan {
  launch: Date[];
  missed: Date[];
  skipped: Date[];
}

/**
 * Splits one cron's due slots into launch, missed and skipped:
 * - a suspended definition skips every slot; a slot on a suspend-cron minute is skipped;
 * - of the remaining slots only the most recent one may launch, and only if it is late by less than
 *   `catchUpWindowMinutes + 1` minutes (that is, its lateness in whole minutes is within the window, so a
 *   scheduler pass a few seconds after the slot always launches it);
 * - every other remaining slot is missed (to be recorded, never launched later).
 * A scheduler that keeps up sees at most one slot per cron per pass, so that slot launches. Call it once per
 * cron: two crons due in the same pass each launch their own slot. Duplicate instants count once.
 * Throws a ValidationError for a slot after `now` (not due yet) or a negative window.
 */
export function planSlots(input: SlotPlanInput): SlotPlan {
  const nowMs = input.now.getTime();
  if (input.catchUpWindowMinutes < 0) throw new ValidationError(`catch-up window ${input.catchUpWindowMinutes} must not be negative`);
  const byTime = new Map<number, Date>();
  for (const slot of input.slots) {
    if (slot.getTime() > nowMs) throw new ValidationError(`slot ${slot.toISOString()} is after now (${input.now.toISOString()})`);
    if (!byTime.has(slot.getTime())) byTime.set(slot.getTime(), slot);
  }
  const slots = [...byTime.values()].sort((a, b) => a.getTime() - b.getTime());
  const plan: SlotPlan = { launch: [], missed: [], skipped: [] };
  if (input.suspended) return { ...plan, skipped: slots };
  const eligible: Date[] = [];
  for (const slot of slots) (input.isSuspendedSlot(slot) ? plan.skipped : eligible).push(slot);
  const latest = eligible.at(-1);
  const windowMs = (input.catchUpWindowMinutes + 1) * MS_PER_MINUTE;
  if (latest && nowMs - latest.getTime() < windowMs) {
    plan.launch.push(latest);
    plan.missed.push(...eligible.slice(0, -1));
  } else {
    plan.missed.push(...eligible);
  }
  return plan;
}
