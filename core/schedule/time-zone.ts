/**
 * Time-zone arithmetic on epoch milliseconds. A "wall" value is a local date-time written as if it were UTC
 * (`Date.UTC(y, m, d, h, min)`), so wall days are exactly 24 h long and DST lives only in the offsets.
 */
import { IANAZone } from 'luxon';
import { ValidationError } from '../errors';
import type { LocalTimeFields } from './cron-expression';
import { HOURS_PER_DAY, MINUTES_PER_HOUR } from './minute-set';

const MS_PER_SECOND = 1000;
const SECONDS_PER_MINUTE = 60;
export const MS_PER_MINUTE = SECONDS_PER_MINUTE * MS_PER_SECOND;
export const MS_PER_HOUR = MINUTES_PER_HOUR * MS_PER_MINUTE;
export const MS_PER_DAY = HOURS_PER_DAY * MS_PER_HOUR;
const TWO_DIGITS = 2;

/** A time zone resolved once: its name and its UTC offset at any instant. */
export interface ZoneClock {
  readonly name: string;
  /** Minutes to add to UTC to get local time at `epochMs`. */
  offsetMinutes(epochMs: number): number;
}

/**
 * Resolved zones by name. Validating a name builds an Intl formatter, far slower than an offset lookup, and a
 * scheduler pass resolves the same few zones for every slot. Memoisation only: no behaviour depends on it.
 */
const resolvedZones = new Map<string, ZoneClock>();

/** True when `tz` is an IANA time-zone name this runtime knows (`UTC`, `Asia/Tokyo`, `America/New_York`). */
export function isValidTimeZone(tz: string): boolean {
  return resolvedZones.has(tz) || (tz.length > 0 && IANAZone.isValidZone(tz));
}

/** Resolves a time-zone name, or throws a ValidationError naming it. */
export function zoneClock(tz: string): ZoneClock {
  const known = resolvedZones.get(tz);
  if (known) return known;
  if (!isValidTimeZone(tz)) {
    throw new ValidationError(`\`${tz}\` is not a known time zone`, [{ field: 'time_zone', message: `unknown time zone ${tz}` }]);
  }
  const zone = IANAZone.create(tz);
  const clock: ZoneClock = { name: tz, offsetMinutes: (epochMs) => zone.offset(epochMs) };
  resolvedZones.set(tz, clock);
  return clock;
}

/** The wall value (see the file comment) of an instant. */
export function wallOf(zone: ZoneClock, epochMs: number): number {
  return epochMs + zone.offsetMinutes(epochMs) * MS_PER_MINUTE;
}

/** Cron's view of a wall value: minute, hour, day of month, month (1-12), weekday (0 = Sunday). */
export function wallFields(wall: number): LocalTimeFields {
  const date = new Date(wall);
  return {
    minute: date.getUTCMinutes(),
    hour: date.getUTCHours(),
    day: date.getUTCDate(),
    month: date.getUTCMonth() + 1,
    weekday: date.getUTCDay(),
  };
}

/** The wall-clock fields of an instant in a time zone. */
export function localTimeFields(at: Date, timeZone: string): LocalTimeFields {
  return wallFields(wallOf(zoneClock(timeZone), at.getTime()));
}

/** Floors an instant to its minute (negative epochs included). */
export function floorToMinute(epochMs: number): number {
  return Math.floor(epochMs / MS_PER_MINUTE) * MS_PER_MINUTE;
}

/** Rounds an instant up to a whole minute. */
export function ceilToMinute(epochMs: number): number {
  return Math.ceil(epochMs / MS_PER_MINUTE) * MS_PER_MINUTE;
}

/**
 * The first instant in `(low, high]` whose offset differs from the offset at `low`, given that the offset at
 * `high` differs. Offsets change at most once within the short spans this is called on.
 */
export function bisectTransition(zone: ZoneClock, low: number, high: number): number {
  const offset = zone.offsetMinutes(low);
  let lo = low;
  let hi = high;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (zone.offsetMinutes(mid) === offset) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Every instant whose wall time in the zone is `wall`, ascending: none in a spring-forward gap, two in a
 * fall-back overlap. Assumes at most one offset change within a day of `wall`, true of every real zone.
 */
export function instantsOfWall(zone: ZoneClock, wall: number): number[] {
  const candidates = new Set([zone.offsetMinutes(wall - MS_PER_DAY), zone.offsetMinutes(wall + MS_PER_DAY)]);
  const instants: number[] = [];
  for (const offset of candidates) {
    const instant = wall - offset * MS_PER_MINUTE;
    if (zone.offsetMinutes(instant) === offset) instants.push(instant);
  }
  return instants.sort((a, b) => a - b);
}

/** `+09:00`-style text of an offset in minutes. */
export function formatOffset(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const pad = (n: number): string => String(n).padStart(TWO_DIGITS, '0');
  return `${sign}${pad(Math.floor(abs / MINUTES_PER_HOUR))}:${pad(abs % MINUTES_PER_HOUR)}`;
}
