import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors';
import type { LocalTimeFields } from '../../../core/schedule';
import { cronMatches, isWildcardCron, parseCron, parseCronOrThrow } from '../../../core/schedule';

function values(expr: string): number[][] {
  const cron = parseCronOrThrow(expr);
  return [cron.minute.values, cron.hour.values, cron.day.values, cron.month.values, cron.weekday.values].map((v) => [...v]);
}

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

function rejection(expr: string): string {
  const result = parseCron(expr);
  if (result.ok) throw new Error(`expected ${expr} to be rejected`);
  return result.message;
}

describe('parseCron accepts every documented form', () => {
  it('reads `*` as the whole range of each field', () => {
    expect(values('* * * * *')).toEqual([range(0, 59), range(0, 23), range(1, 31), range(1, 12), range(0, 6)]);
  });

  it('reads single values, ranges, steps and lists', () => {
    expect(values('5 0 1 12 0')).toEqual([[5], [0], [1], [12], [0]]);
    expect(values('0-4 9-17 1-7 6-8 1-5')).toEqual([range(0, 4), range(9, 17), range(1, 7), range(6, 8), range(1, 5)]);
    expect(values('*/15 */6 */10 */3 */2')).toEqual([[0, 15, 30, 45], [0, 6, 12, 18], [1, 11, 21, 31], [1, 4, 7, 10], [0, 2, 4, 6]]);
    expect(values('10-40/10 1-23/11 5-20/5 2-12/5 1-6/2')).toEqual([[10, 20, 30, 40], [1, 12, 23], [5, 10, 15, 20], [2, 7, 12], [1, 3, 5]]);
    expect(values('0,30,15,30 1,2-4,*/12 1,15 1,6-7 0,6')).toEqual([[0, 15, 30], [0, 1, 2, 3, 4, 12], [1, 15], [1, 6, 7], [0, 6]]);
  });

  it('accepts the bounds of every field and tolerates surrounding and repeated blanks', () => {
    expect(values(' 59  23\t31 12 6 ')).toEqual([[59], [23], [31], [12], [6]]);
    expect(parseCronOrThrow('  0   0 * * *').source).toBe('0 0 * * *');
  });

  it('keeps a step larger than the range (it fires at the start only)', () => {
    expect(values('*/90 * * * *')[0]).toEqual([0]);
  });

  it('marks fields that start with `*` as starred', () => {
    const cron = parseCronOrThrow('*/5 1 *,5 * 1');
    expect([cron.minute.starred, cron.hour.starred, cron.day.starred, cron.weekday.starred]).toEqual([true, false, true, false]);
    expect(isWildcardCron(cron)).toBe(true);
    expect(isWildcardCron(parseCronOrThrow('30 1 * * *'))).toBe(false);
    expect(isWildcardCron(parseCronOrThrow('0 * * * *'))).toBe(true);
  });
});

describe('parseCron rejects everything else, naming the expression', () => {
  it.each([
    ['hotdogs', 'expected 5 fields'],
    ['', 'found 0'],
    ['* * * *', 'found 4'],
    ['0 * * * * *', 'found 6'],
    ['@daily', 'expected 5 fields'],
    ['0 0 * * 7', '7 is outside 0-6'],
    ['0 0 * * sun', 'weekday field `sun`'],
    ['0 0 * jan *', 'month field `jan`'],
    ['0 0 L * *', 'day field `L`'],
    ['0 0 ? * *', 'day field `?`'],
    ['0 0 * * 5#3', 'weekday field `5#3`'],
    ['5-0 * * * *', 'reversed'],
    ['*/0 * * * *', 'at least 1'],
    ['1-10/0 * * * *', 'at least 1'],
    ['60 * * * *', '60 is outside 0-59'],
    ['0 24 * * *', '24 is outside 0-23'],
    ['0 0 0 * *', '0 is outside 1-31'],
    ['0 0 32 * *', '32 is outside 1-31'],
    ['0 0 * 0 *', '0 is outside 1-12'],
    ['0 0 * 13 *', '13 is outside 1-12'],
    ['0 0 1-32 * *', '32 is outside 1-31'],
    ['5/10 * * * *', 'a step needs'],
    ['1,,2 * * * *', 'minute field `1,,2`'],
    ['1, * * * *', 'minute field `1,`'],
    ['-1 * * * *', 'minute field `-1`'],
    ['*/ * * * *', 'minute field `*/`'],
    ['** * * * *', 'minute field `**`'],
    ['1.5 * * * *', 'minute field `1.5`'],
    ['0 0 30 2 *', 'never fire'],
    ['0 0 31 4,6,9,11 *', 'never fire'],
    ['0 0 31 2 */2', 'never fire'],
  ])('%j: %s', (expr, reason) => {
    const message = rejection(expr);
    expect(message.startsWith(`\`${expr}\` is not a valid cron expression: `)).toBe(true);
    expect(message).toContain(reason);
  });

  it('keeps dates that exist in some year: February 29, and the 31st when a long month is allowed', () => {
    expect(parseCron('0 0 29 2 *').ok).toBe(true);
    expect(parseCron('0 0 31 2,3 *').ok).toBe(true);
    // Day 30 of February never exists, but the weekday OR makes it fire on Mondays.
    expect(parseCron('0 0 30 2 1').ok).toBe(true);
  });

  it('throws a ValidationError from parseCronOrThrow', () => {
    expect(() => parseCronOrThrow('hotdogs')).toThrow(ValidationError);
    expect(() => parseCronOrThrow('hotdogs')).toThrow('`hotdogs` is not a valid cron expression');
  });
});

describe('cronMatches', () => {
  const at = (month: number, day: number, weekday: number, hour = 0, minute = 0): LocalTimeFields => ({ minute, hour, day, month, weekday });

  it('needs minute, hour and month to match', () => {
    const cron = parseCronOrThrow('30 9 * 3 *');
    expect(cronMatches(cron, at(3, 1, 0, 9, 30))).toBe(true);
    expect(cronMatches(cron, at(3, 1, 0, 9, 31))).toBe(false);
    expect(cronMatches(cron, at(3, 1, 0, 10, 30))).toBe(false);
    expect(cronMatches(cron, at(4, 1, 0, 9, 30))).toBe(false);
  });

  it('ORs the day fields when both are restricted: `0 0 13 * 5` fires on the 13th and on Fridays', () => {
    const cron = parseCronOrThrow('0 0 13 * 5');
    expect(cronMatches(cron, at(3, 13, 5))).toBe(true); // Friday 13th
    expect(cronMatches(cron, at(3, 13, 2))).toBe(true); // 13th, a Tuesday
    expect(cronMatches(cron, at(3, 6, 5))).toBe(true); // a Friday, the 6th
    expect(cronMatches(cron, at(3, 14, 6))).toBe(false);
  });

  it('ANDs them when either starts with `*` (Vixie cron)', () => {
    const starDay = parseCronOrThrow('0 0 */2 * 5');
    expect(cronMatches(starDay, at(3, 13, 5))).toBe(true);
    expect(cronMatches(starDay, at(3, 6, 5))).toBe(false);
    expect(cronMatches(starDay, at(3, 13, 2))).toBe(false);
    const starWeekday = parseCronOrThrow('0 0 13 * *');
    expect(cronMatches(starWeekday, at(3, 13, 2))).toBe(true);
    expect(cronMatches(starWeekday, at(3, 6, 5))).toBe(false);
    const onlyWeekday = parseCronOrThrow('0 0 * * 1-5');
    expect(cronMatches(onlyWeekday, at(3, 7, 6))).toBe(false);
    expect(cronMatches(onlyWeekday, at(3, 9, 1))).toBe(true);
  });
});
