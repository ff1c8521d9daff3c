import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors';
import { isValidTimeZone, localTimeFields, nextFireTime, parseCronOrThrow, slotsBetween } from '../../../core/schedule';

const NY = 'America/New_York';
const LONDON = 'Europe/London';
const TOKYO = 'Asia/Tokyo';

function slots(expr: string, from: string, to: string, zone: string): string[] {
  return slotsBetween(parseCronOrThrow(expr), new Date(from), new Date(to), zone).map((d) => d.toISOString());
}

function next(expr: string, after: string, zone: string): string | undefined {
  return nextFireTime(parseCronOrThrow(expr), new Date(after), zone)?.toISOString();
}

describe('time zones', () => {
  it('knows IANA names and rejects others', () => {
    for (const tz of ['UTC', TOKYO, NY, LONDON, 'Asia/Kolkata', 'Australia/Lord_Howe']) expect(isValidTimeZone(tz)).toBe(true);
    for (const tz of ['', 'Mars/Olympus', '+09:00', 'UTC+9', 'JST-9x']) expect(isValidTimeZone(tz)).toBe(false);
  });

  it('throws a ValidationError naming an unknown zone', () => {
    expect(() => nextFireTime(parseCronOrThrow('* * * * *'), new Date('2026-01-01T00:00:00Z'), 'Mars/Olympus')).toThrow(ValidationError);
    expect(() => slotsBetween(parseCronOrThrow('* * * * *'), new Date(0), new Date(0), 'Mars/Olympus')).toThrow('`Mars/Olympus`');
  });

  it('gives local wall fields, weekday 0 for Sunday', () => {
    expect(localTimeFields(new Date('2026-03-08T06:59:00Z'), NY)).toEqual({ minute: 59, hour: 1, day: 8, month: 3, weekday: 0 });
    expect(localTimeFields(new Date('2026-03-08T07:00:00Z'), NY)).toEqual({ minute: 0, hour: 3, day: 8, month: 3, weekday: 0 });
    expect(localTimeFields(new Date('2026-12-31T15:00:00Z'), TOKYO)).toEqual({ minute: 0, hour: 0, day: 1, month: 1, weekday: 5 });
  });
});

describe('slotsBetween and nextFireTime in zones without DST', () => {
  it('UTC: (from, to] at minute resolution', () => {
    expect(slots('0 9 * * *', '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z', 'UTC')).toEqual([
      '2026-03-07T09:00:00.000Z',
      '2026-03-08T09:00:00.000Z',
      '2026-03-09T09:00:00.000Z',
    ]);
    // `from` is exclusive, `to` inclusive; seconds in `from` round up to the next minute.
    expect(slots('* * * * *', '2026-01-01T10:00:00Z', '2026-01-01T10:02:00Z', 'UTC')).toEqual(['2026-01-01T10:01:00.000Z', '2026-01-01T10:02:00.000Z']);
    expect(slots('* * * * *', '2026-01-01T10:00:30Z', '2026-01-01T10:01:59Z', 'UTC')).toEqual(['2026-01-01T10:01:00.000Z']);
    expect(slots('* * * * *', '2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z', 'UTC')).toEqual([]);
    expect(slots('* * * * *', '2026-01-01T10:00:00Z', '2026-01-01T09:00:00Z', 'UTC')).toEqual([]);
  });

  it('UTC: strictly after, and yearly or leap-day crons far ahead', () => {
    expect(next('0 9 * * *', '2026-03-07T09:00:00Z', 'UTC')).toBe('2026-03-08T09:00:00.000Z');
    expect(next('0 9 * * *', '2026-03-07T08:59:59.999Z', 'UTC')).toBe('2026-03-07T09:00:00.000Z');
    expect(next('0 0 1 1 *', '2026-01-01T00:00:00Z', 'UTC')).toBe('2027-01-01T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2026-01-01T00:00:00Z', 'UTC')).toBe('2028-02-29T00:00:00.000Z');
    // February 29 on a Sunday: 2032.
    expect(next('0 0 29 2 */7', '2026-01-01T00:00:00Z', 'UTC')).toBe('2032-02-29T00:00:00.000Z');
    // OR of the day fields: the 13th or a Friday, whichever comes first.
    expect(slots('0 0 13 * 5', '2026-03-01T00:00:00Z', '2026-03-20T00:00:00Z', 'UTC')).toEqual([
      '2026-03-06T00:00:00.000Z',
      '2026-03-13T00:00:00.000Z',
      '2026-03-20T00:00:00.000Z',
    ]);
  });

  it('Asia/Tokyo: +09:00 all year', () => {
    expect(slots('0 9 * * *', '2026-03-07T00:00:00Z', '2026-03-09T00:00:00Z', TOKYO)).toEqual([
      '2026-03-08T00:00:00.000Z',
      '2026-03-09T00:00:00.000Z',
    ]);
    expect(next('0 9 * * *', '2026-03-08T00:00:00Z', TOKYO)).toBe('2026-03-09T00:00:00.000Z');
    // Midnight of the 1st in Tokyo is 15:00 UTC of the previous day.
    expect(next('0 0 1 * *', '2026-03-31T15:00:00Z', TOKYO)).toBe('2026-04-30T15:00:00.000Z');
    expect(slots('30 1 * * *', '2026-10-24T00:00:00Z', '2026-10-26T00:00:00Z', TOKYO)).toEqual([
      '2026-10-24T16:30:00.000Z',
      '2026-10-25T16:30:00.000Z',
    ]);
  });
});

describe('America/New_York across 2026 DST (spring forward 2026-03-08 02:00 EST, fall back 2026-11-01 02:00 EDT)', () => {
  it('a daily 09:00 job moves from 14:00Z to 13:00Z and back', () => {
    expect(slots('0 9 * * *', '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z', NY)).toEqual([
      '2026-03-07T14:00:00.000Z',
      '2026-03-08T13:00:00.000Z',
      '2026-03-09T13:00:00.000Z',
    ]);
    expect(slots('0 9 * * *', '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z', NY)).toEqual([
      '2026-10-31T13:00:00.000Z',
      '2026-11-01T14:00:00.000Z',
      '2026-11-02T14:00:00.000Z',
    ]);
  });

  it('spring forward: a wall minute in the gap does not fire that day', () => {
    expect(slots('30 2 * * *', '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z', NY)).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
    expect(next('30 2 * * *', '2026-03-07T08:00:00Z', NY)).toBe('2026-03-09T06:30:00.000Z');
    expect(next('0 3 * * *', '2026-03-08T00:00:00Z', NY)).toBe('2026-03-08T07:00:00.000Z');
  });

  it('spring forward: an hourly job keeps its real-time pace (01:30 EST, then 03:30 EDT)', () => {
    expect(slots('30 * * * *', '2026-03-08T05:00:00Z', '2026-03-08T09:00:00Z', NY)).toEqual([
      '2026-03-08T05:30:00.000Z',
      '2026-03-08T06:30:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-08T08:30:00.000Z',
    ]);
  });

  it('fall back: a fixed-time job fires once, at the first 01:30 (EDT)', () => {
    expect(slots('30 1 * * *', '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z', NY)).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
    expect(slots('0,30 1 * * *', '2026-11-01T04:00:00Z', '2026-11-01T08:00:00Z', NY)).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T05:30:00.000Z',
    ]);
    expect(next('30 1 * * *', '2026-11-01T05:10:00Z', NY)).toBe('2026-11-01T05:30:00.000Z');
    // Starting inside the repeated hour: 01:30 was already lived through at 05:30Z.
    expect(next('30 1 * * *', '2026-11-01T06:10:00Z', NY)).toBe('2026-11-02T06:30:00.000Z');
    expect(slots('30 1 * * *', '2026-11-01T06:10:00Z', '2026-11-02T12:00:00Z', NY)).toEqual(['2026-11-02T06:30:00.000Z']);
  });

  it('fall back: a job whose minute or hour starts with `*` fires at both occurrences', () => {
    expect(slots('*/30 * * * *', '2026-11-01T04:45:00Z', '2026-11-01T07:15:00Z', NY)).toEqual([
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T06:30:00.000Z', // 01:30 EST
      '2026-11-01T07:00:00.000Z', // 02:00 EST
    ]);
    expect(slots('*/30 1 * * *', '2026-11-01T04:45:00Z', '2026-11-01T07:15:00Z', NY)).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T06:00:00.000Z',
      '2026-11-01T06:30:00.000Z',
    ]);
    expect(next('30 * * * *', '2026-11-01T06:10:00Z', NY)).toBe('2026-11-01T06:30:00.000Z');
    expect(slots('* * * * *', '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z', NY)).toHaveLength(24 * 60);
  });
});

describe('Europe/London across 2026 DST (spring forward 2026-03-29 01:00 GMT, fall back 2026-10-25 02:00 BST)', () => {
  it('spring forward: 01:30 does not exist on 29 March', () => {
    expect(slots('30 1 * * *', '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z', LONDON)).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    expect(slots('0 * * * *', '2026-03-28T23:30:00Z', '2026-03-29T03:30:00Z', LONDON)).toEqual([
      '2026-03-29T00:00:00.000Z', // 00:00 GMT
      '2026-03-29T01:00:00.000Z', // 02:00 BST
      '2026-03-29T02:00:00.000Z',
      '2026-03-29T03:00:00.000Z',
    ]);
  });

  it('fall back: 01:30 fires once (BST), hourly fires every real hour', () => {
    expect(slots('30 1 * * *', '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z', LONDON)).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
    expect(slots('0 * * * *', '2026-10-24T23:30:00Z', '2026-10-25T03:30:00Z', LONDON)).toEqual([
      '2026-10-25T00:00:00.000Z', // 01:00 BST
      '2026-10-25T01:00:00.000Z', // 01:00 GMT
      '2026-10-25T02:00:00.000Z',
      '2026-10-25T03:00:00.000Z',
    ]);
    expect(next('0 9 * * *', '2026-10-25T08:00:00Z', LONDON)).toBe('2026-10-25T09:00:00.000Z');
    expect(next('0 9 * * *', '2026-10-24T07:00:00Z', LONDON)).toBe('2026-10-24T08:00:00.000Z');
  });
});

describe('zones with odd offsets', () => {
  it('Asia/Kolkata (+05:30) and Australia/Lord_Howe (30-minute DST, ends 2026-04-05 02:00 +11:00)', () => {
    expect(next('0 0 * * *', '2026-01-01T00:00:00Z', 'Asia/Kolkata')).toBe('2026-01-01T18:30:00.000Z');
    // Lord Howe falls back from +11:00 to +10:30 at 02:00 local: 01:30-01:59 repeats.
    expect(slots('45 1 * * *', '2026-04-04T12:00:00Z', '2026-04-05T18:00:00Z', 'Australia/Lord_Howe')).toEqual([
      '2026-04-04T14:45:00.000Z', // 01:45 +11:00 on the 5th; its repeat at 15:15Z does not fire
      '2026-04-05T15:15:00.000Z', // 01:45 +10:30 on the 6th
    ]);
    expect(slots('45 * * * *', '2026-04-04T14:00:00Z', '2026-04-04T16:00:00Z', 'Australia/Lord_Howe')).toEqual([
      '2026-04-04T14:45:00.000Z', // 01:45 +11:00
      '2026-04-04T15:15:00.000Z', // 01:45 +10:30, the repeat
    ]);
  });
});
