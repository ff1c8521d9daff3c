import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import type { CronExpression } from '../../../core/schedule';
import { cronMatches, isWildcardCron, localTimeFields, nextFireTime, parseCron, slotsBetween } from '../../../core/schedule';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BOUNDS: [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 6]];
const ZONES = ['UTC', 'Asia/Tokyo', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata', 'America/Santiago'];
/** 2026 DST changes of the zones above, so random windows often straddle one. */
const TRANSITIONS = [
  '2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z',
  '2026-04-04T15:00:00Z', '2026-10-03T15:30:00Z', '2026-04-05T03:00:00Z', '2026-09-06T04:00:00Z',
].map((s) => Date.parse(s));

function elementArb([min, max]: [number, number]): fc.Arbitrary<string> {
  const value = fc.integer({ min, max });
  const range = fc.tuple(value, value).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
  const step = fc.integer({ min: 1, max: max - min + 1 });
  return fc.oneof(
    fc.constant('*'),
    value.map(String),
    range.map(([a, b]) => `${a}-${b}`),
    step.map((s) => `*/${s}`),
    fc.tuple(range, step).map(([[a, b], s]) => `${a}-${b}/${s}`),
  );
}

const cronArb: fc.Arbitrary<CronExpression> = fc
  .tuple(...BOUNDS.map((b) => fc.array(elementArb(b), { minLength: 1, maxLength: 3 }).map((els) => els.join(','))))
  .map((fields) => parseCron(fields.join(' ')))
  .filter((r) => r.ok)
  .map((r) => (r.ok ? r.cron : (undefined as never)));

const afterArb = fc.oneof(
  fc.tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -2 * DAY, max: DAY })).map(([t, d]) => new Date(t + d)),
  fc.date({ min: new Date('2025-01-01T00:00:00Z'), max: new Date('2028-12-31T00:00:00Z'), noInvalidDate: true }),
);

/**
 * Independent oracle with luxon's DateTime: the minute fires when its local fields match, unless it is the
 * second pass of a wall time repeated by a fall-back and the cron is not a wildcard one.
 */
function oracleFires(cron: CronExpression, t: number, zone: string): boolean {
  const local = DateTime.fromMillis(t, { zone });
  const fields = { minute: local.minute, hour: local.hour, day: local.day, month: local.month, weekday: local.weekday % 7 };
  if (!cronMatches(cron, fields)) return false;
  if (isWildcardCron(cron)) return true;
  const earlierOffset = DateTime.fromMillis(t - 3 * HOUR, { zone }).offset;
  if (earlierOffset <= local.offset) return true;
  const earlier = DateTime.fromMillis(t - (earlierOffset - local.offset) * MINUTE, { zone });
  const repeated = earlier.offset === earlierOffset && earlier.hour === local.hour && earlier.minute === local.minute && earlier.day === local.day;
  return !repeated;
}

describe('slot search properties', () => {
  it('slotsBetween yields exactly the firing minutes of a day in order; nextFireTime is the first slot of two days', () => {
    fc.assert(
      fc.property(cronArb, afterArb, fc.constantFrom(...ZONES), (cron, after, zone) => {
        const to = new Date(after.getTime() + DAY);
        const slots = slotsBetween(cron, after, to, zone).map((d) => d.getTime());
        let previous = after.getTime();
        for (const slot of slots) {
          expect(slot).toBeGreaterThan(previous);
          expect(slot % MINUTE).toBe(0);
          expect(cronMatches(cron, localTimeFields(new Date(slot), zone))).toBe(true);
          previous = slot;
        }
        expect(slots.at(-1) ?? 0).toBeLessThanOrEqual(to.getTime());

        const expected: number[] = [];
        for (let t = Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE; t <= to.getTime(); t += MINUTE) {
          if (oracleFires(cron, t, zone)) expected.push(t);
        }
        expect(slots).toEqual(expected);

        const twoDays = slotsBetween(cron, after, new Date(after.getTime() + 2 * DAY), zone);
        const next = nextFireTime(cron, after, zone);
        if (twoDays.length > 0) expect(next).toEqual(twoDays[0]);
        else expect(next === undefined || next.getTime() > after.getTime() + 2 * DAY).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});
