/**
 * Cron slots as instants in a time zone (D8).
 *
 * The search walks the zone's offset segments (stretches of time with one UTC offset) in order. Inside a
 * segment, wall time and instant map one to one, so the next matching wall minute gives the next slot.
 * DST rules that follow from it:
 * - Spring forward: wall minutes in the gap (02:00-02:59 in New York on 2026-03-08) exist in no segment and
 *   do not fire. A job at `30 2 * * *` does not run that day. (Vixie cron runs it late instead; a late run
 *   at an unannounced time surprises more than a documented skip.)
 * - Fall back: a repeated wall minute fires once, at its first occurrence, unless the cron's minute or hour
 *   field starts with `*` (Vixie cron's "wildcard" jobs): those fire at each occurrence, so `*\/15 * * * *`
 *   and `0 * * * *` keep their real-time pace through the repeated hour while `30 1 * * *` runs once.
 */
import type { CronExpression } from './cron-expression';
import { cronMatchesDate, isWildcardCron } from './cron-expression';
import type { MinuteSet } from './minute-set';
import type { ZoneClock } from './time-zone';
import { bisectTransition, ceilToMinute, floorToMinute, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, zoneClock } from './time-zone';

/** What fires on a wall-clock day, by its date; a cron, or a cron minus suspend schedules. */
export interface DaySchedule {
  /** The minutes that fire on a date of this class, or undefined when none do. */
  minutesOn(month: number, day: number, weekday: number): MinuteSet | undefined;
  /** Whether a wall minute repeated by a DST fall-back fires again at its second occurrence. */
  readonly repeatsInFallBack: boolean;
}

/** How far `nextFireTime` looks ahead: every valid cron fires within this (Feb 29 on a given weekday recurs in 40 years at worst). */
export const SEARCH_HORIZON_YEARS = 50;
const DAYS_PER_YEAR_MAX = 366;
const SEARCH_HORIZON_MS = SEARCH_HORIZON_YEARS * DAYS_PER_YEAR_MAX * MS_PER_DAY;
/** Longer than any fall-back (1 h today, 2 h in old double summer time), for finding the overlap an instant lies in. */
const MAX_FALL_BACK_MS = 3 * MS_PER_HOUR;

/** The day schedule of one cron. */
export function cronDaySchedule(cron: CronExpression): DaySchedule {
  return {
    minutesOn: (month, day, weekday) => (cronMatchesDate(cron, month, day, weekday) ? cron.minutesOfDay : undefined),
    repeatsInFallBack: isWildcardCron(cron),
  };
}

/** The first wall minute `>= fromWall` and `<= limitWall` that the schedule fires on. */
function nextWallMinute(schedule: DaySchedule, fromWall: number, limitWall: number): number | undefined {
  let dayStart = Math.floor(fromWall / MS_PER_DAY) * MS_PER_DAY;
  let minute = Math.ceil((fromWall - dayStart) / MS_PER_MINUTE);
  while (dayStart <= limitWall) {
    const date = new Date(dayStart);
    const minutes = schedule.minutesOn(date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCDay());
    const found = minutes?.nextFrom(minute) ?? -1;
    if (found >= 0) {
      const wall = dayStart + found * MS_PER_MINUTE;
      return wall <= limitWall ? wall : undefined;
    }
    dayStart += MS_PER_DAY;
    minute = 0;
  }
  return undefined;
}

/**
 * The wall time below which an instant's wall values were already lived through, when the instant lies in
 * the second pass of a fall-back; -Infinity otherwise.
 */
function repeatedWallEnd(zone: ZoneClock, instant: number): number {
  const lookback = instant - MAX_FALL_BACK_MS;
  const before = zone.offsetMinutes(lookback);
  if (before <= zone.offsetMinutes(instant)) return -Infinity;
  return bisectTransition(zone, lookback, instant) + before * MS_PER_MINUTE;
}

/** Every slot of the schedule in `(afterMs, untilMs]`, ascending, as epoch milliseconds (minute aligned). */
export function* slotInstants(schedule: DaySchedule, zone: ZoneClock, afterMs: number, untilMs: number): Generator<number> {
  let segmentStart = floorToMinute(afterMs) + MS_PER_MINUTE;
  if (segmentStart > untilMs) return;
  let offsetMs = zone.offsetMinutes(segmentStart) * MS_PER_MINUTE;
  let wallFloor = segmentStart + offsetMs;
  if (!schedule.repeatsInFallBack) wallFloor = Math.max(wallFloor, repeatedWallEnd(zone, segmentStart));
  // The offset is known to be `offsetMs` on [segmentStart, checkedUntil]; `transition` is where it changes.
  let checkedUntil = segmentStart;
  let transition: number | undefined;
  for (;;) {
    const limit = transition === undefined ? untilMs : Math.min(untilMs, transition - 1);
    const wall = nextWallMinute(schedule, wallFloor, limit + offsetMs);
    const candidate = wall === undefined ? undefined : wall - offsetMs;
    // Offsets are sampled a day apart (no real zone changes its offset twice within a day), a whole day at a
    // time so that a minutely cron costs one sample per day rather than one per slot.
    const target = candidate ?? limit;
    while (transition === undefined && checkedUntil < target) {
      const next = checkedUntil + MS_PER_DAY;
      if (zone.offsetMinutes(next) * MS_PER_MINUTE === offsetMs) checkedUntil = next;
      else transition = bisectTransition(zone, checkedUntil, next);
    }
    if (wall !== undefined && candidate !== undefined && (transition === undefined || candidate < transition)) {
      yield candidate;
      wallFloor = wall + MS_PER_MINUTE;
      continue;
    }
    if (transition === undefined || transition > untilMs) return;
    const previousOffsetMs = offsetMs;
    segmentStart = transition;
    offsetMs = zone.offsetMinutes(segmentStart) * MS_PER_MINUTE;
    wallFloor = ceilToMinute(segmentStart + offsetMs);
    if (!schedule.repeatsInFallBack && offsetMs < previousOffsetMs) {
      wallFloor = Math.max(wallFloor, segmentStart + previousOffsetMs);
    }
    checkedUntil = segmentStart;
    transition = undefined;
  }
}

/** The first slot of a schedule strictly after `after`, within the search horizon. */
export function nextScheduleTime(schedule: DaySchedule, after: Date, timeZone: string): Date | undefined {
  const afterMs = after.getTime();
  const first = slotInstants(schedule, zoneClock(timeZone), afterMs, afterMs + SEARCH_HORIZON_MS).next();
  return first.done ? undefined : new Date(first.value);
}

/** The first time the cron fires strictly after `after` (minute resolution), in the time zone; see the file comment for DST. */
export function nextFireTime(cron: CronExpression, after: Date, timeZone: string): Date | undefined {
  return nextScheduleTime(cronDaySchedule(cron), after, timeZone);
}

/** Every time the cron fires in `(fromExclusive, toInclusive]`, in order, in the time zone. */
export function slotsBetween(cron: CronExpression, fromExclusive: Date, toInclusive: Date, timeZone: string): Date[] {
  const zone = zoneClock(timeZone);
  return [...slotInstants(cronDaySchedule(cron), zone, fromExclusive.getTime(), toInclusive.getTime())].map((ms) => new Date(ms));
}
