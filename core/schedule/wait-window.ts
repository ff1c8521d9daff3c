/** The window a `wait:` job's instance must be created in (Kuroko2 1.9, D8). */
import { DateTime } from 'luxon';
import type { WaitPeriod } from '../model';
import { zoneClock } from './time-zone';

const PERIOD_UNIT = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month' } as const satisfies Record<WaitPeriod, string>;

/** An inclusive window: `to` is the last millisecond of the period. */
export interface TimeWindow {
  from: Date;
  to: Date;
}

/**
 * The hour, day, week (Monday first, as Rails) or month containing `at`, in the time zone, from its first to
 * its last millisecond. Periods are wall-clock periods, so a DST day lasts 23 or 25 hours.
 */
export function waitWindow(period: WaitPeriod, at: Date, timeZone: string): TimeWindow {
  const zone = zoneClock(timeZone);
  const unit = PERIOD_UNIT[period];
  // luxon's weeks are ISO weeks (Monday first) unless locale weeks are asked for.
  const local = DateTime.fromMillis(at.getTime(), { zone: zone.name });
  return { from: local.startOf(unit).toJSDate(), to: local.endOf(unit).toJSDate() };
}
