/**
 * Cron expressions in Kuroko2's accepted subset: five numeric fields, each a comma list of `n`, `a-b`, `*`,
 * `*\/s` or `a-b/s`. Names, `7` for Sunday, `L`, `?`, `@daily` macros and a seconds field are rejected.
 */
import { ValidationError } from '../errors';
import { DAY_CLASSES } from './day-class';
import { MinuteSet } from './minute-set';

export const CRON_FIELD = {
  minute: 'minute',
  hour: 'hour',
  day: 'day',
  month: 'month',
  weekday: 'weekday',
} as const;
export type CronFieldName = (typeof CRON_FIELD)[keyof typeof CRON_FIELD];

interface FieldRange {
  readonly name: CronFieldName;
  readonly min: number;
  readonly max: number;
}

/** Field order and bounds, as written in a crontab line. */
const FIELD_RANGES: readonly FieldRange[] = [
  { name: CRON_FIELD.minute, min: 0, max: 59 },
  { name: CRON_FIELD.hour, min: 0, max: 23 },
  { name: CRON_FIELD.day, min: 1, max: 31 },
  { name: CRON_FIELD.month, min: 1, max: 12 },
  { name: CRON_FIELD.weekday, min: 0, max: 6 },
];

/** `*`, `n` or `a-b`, optionally followed by `/step`. */
const ELEMENT_PATTERN = /^(?:(\*)|(\d+)|(\d+)-(\d+))(?:\/(\d+))?$/;

/** One parsed field. */
export interface CronField {
  /** The field as written. */
  readonly text: string;
  /** Every value the field allows, ascending, without duplicates. */
  readonly values: readonly number[];
  /** Membership of `values`, for matching. */
  readonly allows: ReadonlySet<number>;
  /**
   * The field starts with `*` (`*`, `*\/2`, `*,5`). Vixie cron treats such a day field as unrestricted when
   * combining day of month and weekday, and such a minute or hour field as "wildcard" across a DST fall-back.
   */
  readonly starred: boolean;
}

/** A valid cron expression. Build it with `parseCron`. */
export interface CronExpression {
  /** The expression with its fields separated by single spaces. */
  readonly source: string;
  readonly minute: CronField;
  readonly hour: CronField;
  readonly day: CronField;
  readonly month: CronField;
  readonly weekday: CronField;
  /** The minutes of the day on which it fires, on a day whose date matches. */
  readonly minutesOfDay: MinuteSet;
}

export type CronResult = { ok: true; cron: CronExpression } | { ok: false; message: string };

/** Wall-clock fields of a moment in some time zone; `weekday` 0 is Sunday. */
export interface LocalTimeFields {
  readonly minute: number;
  readonly hour: number;
  readonly day: number;
  readonly month: number;
  readonly weekday: number;
}

type FieldResult = { ok: true; field: CronField } | { ok: false; reason: string };

function parseField(text: string, range: FieldRange): FieldResult {
  const values = new Set<number>();
  for (const element of text.split(',')) {
    const match = ELEMENT_PATTERN.exec(element);
    if (!match) {
      return { ok: false, reason: `${range.name} field \`${text}\` has \`${element}\`, which is not \`n\`, \`a-b\`, \`*\`, \`*/s\` or \`a-b/s\`` };
    }
    const [, star, single, from, to, stepText] = match;
    let low = range.min;
    let high = range.max;
    if (star === undefined) {
      low = Number(single ?? from);
      high = Number(single ?? to);
    }
    if (single !== undefined && stepText !== undefined) {
      return { ok: false, reason: `${range.name} field \`${text}\`: a step needs \`*\` or a range before it, not \`${element}\`` };
    }
    for (const value of [low, high]) {
      if (value < range.min || value > range.max) {
        return { ok: false, reason: `${range.name} field \`${text}\`: ${value} is outside ${range.min}-${range.max}` };
      }
    }
    if (low > high) return { ok: false, reason: `${range.name} field \`${text}\`: the range \`${element}\` is reversed` };
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) return { ok: false, reason: `${range.name} field \`${text}\`: the step of \`${element}\` must be at least 1` };
    for (let value = low; value <= high; value += step) values.add(value);
  }
  const sorted = [...values].sort((a, b) => a - b);
  return { ok: true, field: { text, values: sorted, allows: new Set(sorted), starred: text.startsWith('*') } };
}

/** Parses a five-field cron expression; the failure message names the expression and the reason. */
export function parseCron(expr: string): CronResult {
  const invalid = (reason: string): CronResult => ({ ok: false, message: `\`${expr}\` is not a valid cron expression: ${reason}` });
  const texts = expr.trim().split(/\s+/).filter((t) => t.length > 0);
  if (texts.length !== FIELD_RANGES.length) {
    return invalid(`expected ${FIELD_RANGES.length} fields (minute hour day month weekday), found ${texts.length}`);
  }
  const fields: CronField[] = [];
  for (const [index, range] of FIELD_RANGES.entries()) {
    const result = parseField(texts[index] ?? '', range);
    if (!result.ok) return invalid(result.reason);
    fields.push(result.field);
  }
  const [minute, hour, day, month, weekday] = fields as [CronField, CronField, CronField, CronField, CronField];
  const cron: CronExpression = {
    source: texts.join(' '),
    minute,
    hour,
    day,
    month,
    weekday,
    minutesOfDay: MinuteSet.fromHoursAndMinutes(hour.values, minute.values),
  };
  // `0 0 30 2 *` is well formed but would make every "next run" search fail; saying so at save time is kinder.
  if (!DAY_CLASSES.some((c) => cronMatchesDate(cron, c.month, c.day, c.weekday))) {
    return invalid('no calendar date matches its day and month fields, so it would never fire');
  }
  return { ok: true, cron };
}

/** Parses a cron expression or throws a ValidationError whose message names it. */
export function parseCronOrThrow(expr: string, field = 'cron'): CronExpression {
  const result = parseCron(expr);
  if (!result.ok) throw new ValidationError(result.message, [{ field, message: result.message }]);
  return result.cron;
}

/**
 * True when a date (month, day of month, weekday) matches the cron's day and month fields. Day of month and
 * weekday combine with OR when both are restricted, with AND when either starts with `*` (Vixie cron).
 */
export function cronMatchesDate(cron: CronExpression, month: number, day: number, weekday: number): boolean {
  if (!cron.month.allows.has(month)) return false;
  const dayOk = cron.day.allows.has(day);
  const weekdayOk = cron.weekday.allows.has(weekday);
  return cron.day.starred || cron.weekday.starred ? dayOk && weekdayOk : dayOk || weekdayOk;
}

/** True when the cron fires at the given wall-clock fields. */
export function cronMatches(cron: CronExpression, local: LocalTimeFields): boolean {
  return (
    cron.minute.allows.has(local.minute) &&
    cron.hour.allows.has(local.hour) &&
    cronMatchesDate(cron, local.month, local.day, local.weekday)
  );
}

/**
 * True when the cron repeats in a DST fall-back (its minute or hour field starts with `*`), as Vixie cron's
 * "wildcard" jobs do: `*\/5 * * * *` keeps its pace through the repeated hour, `30 1 * * *` runs once.
 */
export function isWildcardCron(cron: CronExpression): boolean {
  return cron.minute.starred || cron.hour.starred;
}
