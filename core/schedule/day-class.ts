/**
 * Calendar day classes: a (month, day of month, weekday) triple. Cron decides whether a day fires from
 * those three values alone, so two days of the same class always have the same launch minutes.
 */

/** One class of calendar days; `weekday` 0 is Sunday, as in cron. */
export interface DayClass {
  readonly month: number;
  readonly day: number;
  readonly weekday: number;
}

const MONTHS_IN_YEAR = 12;
const DAYS_IN_WEEK = 7;
/** Days per month in a leap year: February 29 exists in the Gregorian calendar, on every weekday over 400 years. */
const MAX_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** The longest month has 31 days; class keys leave room for day 0..31. */
const DAY_KEY_SPAN = 32;

function buildDayClasses(): readonly DayClass[] {
  const classes: DayClass[] = [];
  for (let month = 1; month <= MONTHS_IN_YEAR; month += 1) {
    const days = MAX_DAYS_IN_MONTH[month - 1] ?? 0;
    for (let day = 1; day <= days; day += 1) {
      for (let weekday = 0; weekday < DAYS_IN_WEEK; weekday += 1) classes.push({ month, day, weekday });
    }
  }
  return classes;
}

/**
 * Every day class that occurs in the Gregorian calendar: each (month, day) that exists in some year, with
 * each weekday (the 400-year cycle puts every date, February 29 included, on every weekday).
 */
export const DAY_CLASSES: readonly DayClass[] = buildDayClasses();

/** A dense integer key of a day class, for caching per class. */
export function dayClassKey(month: number, day: number, weekday: number): number {
  return ((month - 1) * DAY_KEY_SPAN + day) * DAYS_IN_WEEK + weekday;
}
