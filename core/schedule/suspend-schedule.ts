/**
 * Suspend schedules: cron expressions whose minutes a definition's launch schedules skip. Matching is on wall
 * time in the definition's zone, so a launch slot is suspended when its local minute matches a suspend cron.
 */
import type { CronExpression } from './cron-expression';
import { cronMatches, cronMatchesDate, isWildcardCron } from './cron-expression';
import { DAY_CLASSES, dayClassKey } from './day-class';
import { MinuteSet } from './minute-set';
import type { DaySchedule } from './slot-search';
import { nextScheduleTime } from './slot-search';
import { localTimeFields } from './time-zone';

export const SUSPEND_PROBLEM = {
  needsLaunchSchedule: 'a suspend schedule needs at least one launch schedule',
  suspendsEveryLaunch: 'the suspend schedule suspends every launch: each launch time falls on a suspended minute',
} as const;

/** True when the slot's local minute matches any of the suspend crons. */
export function isSuspended(suspendCrons: readonly CronExpression[], slot: Date, timeZone: string): boolean {
  if (suspendCrons.length === 0) return false;
  const local = localTimeFields(slot, timeZone);
  return suspendCrons.some((cron) => cronMatches(cron, local));
}

/** The minutes of a day of the given class on which any of the crons fires (empty when none). */
function minutesOfClass(crons: readonly CronExpression[], month: number, day: number, weekday: number): MinuteSet {
  return MinuteSet.union(crons.filter((cron) => cronMatchesDate(cron, month, day, weekday)).map((cron) => cron.minutesOfDay));
}

/**
 * True when some real calendar day has a launch minute that no suspend cron covers. Exact: a day's launch and
 * suspend minutes depend only on its (month, day, weekday) class, and every class is checked.
 */
function leavesSomeLaunch(launchCrons: readonly CronExpression[], suspendCrons: readonly CronExpression[]): boolean {
  return DAY_CLASSES.some(({ month, day, weekday }) => {
    const launches = minutesOfClass(launchCrons, month, day, weekday);
    return !launches.isEmpty() && !launches.minus(minutesOfClass(suspendCrons, month, day, weekday)).isEmpty();
  });
}

/**
 * The problems of a definition's suspend schedules, empty when they are fine: suspend crons without a launch
 * cron, or suspend crons that cover every launch minute on every calendar day (wall-clock; DST aside).
 */
export function validateSuspendSchedules(launchCrons: readonly CronExpression[], suspendCrons: readonly CronExpression[]): string[] {
  if (suspendCrons.length === 0) return [];
  if (launchCrons.length === 0) return [SUSPEND_PROBLEM.needsLaunchSchedule];
  return leavesSomeLaunch(launchCrons, suspendCrons) ? [] : [SUSPEND_PROBLEM.suspendsEveryLaunch];
}

/** One launch cron minus the suspend crons, as a day schedule with its minute sets cached per day class. */
function unsuspendedSchedule(launchCron: CronExpression, suspendCrons: readonly CronExpression[]): DaySchedule {
  const cache = new Map<number, MinuteSet | undefined>();
  return {
    repeatsInFallBack: isWildcardCron(launchCron),
    minutesOn(month, day, weekday) {
      if (!cronMatchesDate(launchCron, month, day, weekday)) return undefined;
      const key = dayClassKey(month, day, weekday);
      if (!cache.has(key)) {
        const left = launchCron.minutesOfDay.minus(minutesOfClass(suspendCrons, month, day, weekday));
        cache.set(key, left.isEmpty() ? undefined : left);
      }
      return cache.get(key);
    },
  };
}

/**
 * The next launch strictly after `after` that no suspend cron covers (the console's "Next" column), or
 * undefined when there is none within the search horizon (`SEARCH_HORIZON_YEARS`) or every launch is suspended.
 */
export function nextLaunchTime(
  launchCrons: readonly CronExpression[],
  suspendCrons: readonly CronExpression[],
  after: Date,
  timeZone: string,
): Date | undefined {
  let best: Date | undefined;
  // A cron left with no minute on any day would otherwise be searched to the horizon.
  for (const cron of launchCrons.filter((c) => leavesSomeLaunch([c], suspendCrons))) {
    const next = nextScheduleTime(unsuspendedSchedule(cron, suspendCrons), after, timeZone);
    if (next && (!best || next < best)) best = next;
  }
  return best;
}
