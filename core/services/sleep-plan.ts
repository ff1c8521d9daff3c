/**
 * Idle sleep (AWS mode): when nothing is in flight, the one-minute ticks stop touching the database until the
 * next thing that is due, so Aurora Serverless v2 can pause at 0 ACU. The database stays the only state: the
 * scheduler derives the sleep from it after each pass, and the sleep is only a hint the ticks read ("nothing is
 * due before T"). Anything that creates work (an API write, a nudge) ends the sleep; a sleep that cannot be read
 * counts as awake.
 *
 * This module is the pure decision: given what is in flight and what is due next, sleep until when, or not.
 */
import { nextFireTime, parseCron } from '../schedule';
import { nextReminderAt } from './monitor-service';
import type { ScheduledDefinition } from './scheduler-service';

const MINUTE_MS = 60_000;

/** What keeps the engine awake, as counts read in one statement. */
export interface WorkInFlight {
  /** Tokens the processor still moves (working, waiting). */
  tokens: number;
  /** Executions not finished yet (queued, claimed or running). */
  executions: number;
  /** Workers that heart-beat recently: the monitor watches them, the provisioner scales them. */
  workers: number;
  /** Notification deliveries waiting for a retry. */
  pendingDeliveries: number;
  /**
   * Recent events the notifier has not settled yet (some channel still without its delivery row: events.notified
   * is 0). A settled event keeps nothing awake: its retries are pending deliveries, counted above.
   */
  unsettledEvents: number;
}

export interface SleepSettings {
  /** The longest sleep: the ticks run at least this often even when nothing is due (notifier retries, safety). */
  maxSleepMs: number;
  /** Woken this long before a due cron slot or reminder, so Aurora has resumed when the slot's minute comes. */
  wakeLeadMs: number;
  /** A shorter sleep is not worth it: Aurora pauses only after five idle minutes. */
  minSleepMs: number;
}

export const DEFAULT_SLEEP_SETTINGS: SleepSettings = {
  maxSleepMs: 60 * MINUTE_MS,
  wakeLeadMs: 3 * MINUTE_MS,
  minSleepMs: 5 * MINUTE_MS,
};

/**
 * How long an event the notifier has not settled keeps the engine awake at most (the notifier is nudged at once and
 * ticks every minute while awake; a notifier that keeps failing has its error alarm). Issue 17: it was every event
 * of the last 15 minutes, settled or not, which kept Aurora awake 15 minutes after every job for nothing.
 */
export const RECENT_EVENT_MS = 15 * MINUTE_MS;
/** A worker heart-beating within this is alive for the purpose of sleep (the monitor judges it lost long before). */
export const RECENT_WORKER_MS = 30 * MINUTE_MS;

export type SleepPlan =
  | { sleep: false; reasons: string[] }
  | { sleep: true; until: Date };

export interface SleepPlanInput {
  now: Date;
  work: WorkInFlight;
  /** Every definition with a launch schedule (suspended ones too: their slots are recorded as skipped). */
  schedules: readonly ScheduledDefinition[];
  /** error_at of every instance still in error: the monitor reminds about each one a day later, and daily. */
  errorsSince: readonly Date[];
  /** The monitor's reminder period. */
  remindAfterMs: number;
  settings?: SleepSettings;
}

/** What keeps the engine awake, as `<count> <kind>`; empty when nothing is in flight. */
export function busyReasons(work: WorkInFlight): string[] {
  return Object.entries(work)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${count} ${name}`);
}

/** Whether the engine may sleep now, and until when: the next cron slot or reminder less the lead, at most maxSleepMs. */
export function planSleep(input: SleepPlanInput): SleepPlan {
  const settings = input.settings ?? DEFAULT_SLEEP_SETTINGS;
  const reasons = busyReasons(input.work);
  if (reasons.length > 0) return { sleep: false, reasons };
  const nowMs = input.now.getTime();
  let wakeMs = nowMs + settings.maxSleepMs;
  const due = nextDue(input);
  if (due !== undefined) wakeMs = Math.min(wakeMs, due.getTime() - settings.wakeLeadMs);
  if (wakeMs - nowMs < settings.minSleepMs) return { sleep: false, reasons: [`next due ${due?.toISOString() ?? '?'}`] };
  return { sleep: true, until: new Date(wakeMs) };
}

/** The earliest cron slot (of any definition) or failure reminder after now. */
function nextDue(input: SleepPlanInput): Date | undefined {
  let earliest: number | undefined;
  const consider = (ms: number) => {
    if (earliest === undefined || ms < earliest) earliest = ms;
  };
  for (const { definition, crons } of input.schedules) {
    for (const text of crons) {
      const parsed = parseCron(text);
      if (!parsed.ok) continue;
      const next = nextFireTime(parsed.cron, input.now, definition.timeZone);
      if (next !== undefined) consider(next.getTime());
    }
  }
  for (const since of input.errorsSince) consider(nextReminderAt(since, input.now, input.remindAfterMs).getTime());
  return earliest === undefined ? undefined : new Date(earliest);
}

/**
 * Whether a sleep published until `until` still holds after the re-check: nothing in flight, and nothing due
 * before it (the re-check runs later, so its own maximum may end later; an earlier due slot may not).
 */
export function sleepHolds(until: Date, recheck: SleepPlan): boolean {
  return recheck.sleep && recheck.until.getTime() >= until.getTime();
}
