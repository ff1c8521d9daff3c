import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors';
import type { WaitPeriod } from '../../../core/model';
import { waitWindow } from '../../../core/schedule';

function window(period: WaitPeriod, at: string, zone: string): [string, string] {
  const { from, to } = waitWindow(period, new Date(at), zone);
  return [from.toISOString(), to.toISOString()];
}

describe('waitWindow', () => {
  it('hourly: the hour containing the moment', () => {
    expect(window('hourly', '2026-03-04T10:17:42Z', 'UTC')).toEqual(['2026-03-04T10:00:00.000Z', '2026-03-04T10:59:59.999Z']);
    // Kolkata is +05:30, so its hours start at :30 UTC.
    expect(window('hourly', '2026-03-04T10:17:42Z', 'Asia/Kolkata')).toEqual(['2026-03-04T09:30:00.000Z', '2026-03-04T10:29:59.999Z']);
  });

  it('daily: the local day, in the zone', () => {
    expect(window('daily', '2026-03-04T10:17:42Z', 'UTC')).toEqual(['2026-03-04T00:00:00.000Z', '2026-03-04T23:59:59.999Z']);
    // 2026-03-04T20:00Z is already the 5th in Tokyo.
    expect(window('daily', '2026-03-04T20:00:00Z', 'Asia/Tokyo')).toEqual(['2026-03-04T15:00:00.000Z', '2026-03-05T14:59:59.999Z']);
  });

  it('weekly: Monday to Sunday', () => {
    // 2026-03-04 is a Wednesday; 2026-03-08 a Sunday; 2026-03-09 a Monday.
    expect(window('weekly', '2026-03-04T10:00:00Z', 'UTC')).toEqual(['2026-03-02T00:00:00.000Z', '2026-03-08T23:59:59.999Z']);
    expect(window('weekly', '2026-03-08T23:59:59Z', 'UTC')).toEqual(['2026-03-02T00:00:00.000Z', '2026-03-08T23:59:59.999Z']);
    expect(window('weekly', '2026-03-09T00:00:00Z', 'UTC')).toEqual(['2026-03-09T00:00:00.000Z', '2026-03-15T23:59:59.999Z']);
  });

  it('monthly: to the last millisecond of the month, leap February included', () => {
    expect(window('monthly', '2026-02-14T12:00:00Z', 'UTC')).toEqual(['2026-02-01T00:00:00.000Z', '2026-02-28T23:59:59.999Z']);
    expect(window('monthly', '2028-02-29T23:59:59.999Z', 'UTC')).toEqual(['2028-02-01T00:00:00.000Z', '2028-02-29T23:59:59.999Z']);
    expect(window('monthly', '2026-12-31T23:00:00Z', 'UTC')).toEqual(['2026-12-01T00:00:00.000Z', '2026-12-31T23:59:59.999Z']);
  });

  it('New York DST days last 23 and 25 hours', () => {
    expect(window('daily', '2026-03-08T12:00:00Z', 'America/New_York')).toEqual(['2026-03-08T05:00:00.000Z', '2026-03-09T03:59:59.999Z']);
    expect(window('daily', '2026-11-01T12:00:00Z', 'America/New_York')).toEqual(['2026-11-01T04:00:00.000Z', '2026-11-02T04:59:59.999Z']);
    // The week containing the spring-forward Sunday starts Monday 00:00 EST and ends Sunday 23:59 EDT.
    expect(window('weekly', '2026-03-08T12:00:00Z', 'America/New_York')).toEqual(['2026-03-02T05:00:00.000Z', '2026-03-09T03:59:59.999Z']);
    expect(window('monthly', '2026-11-15T12:00:00Z', 'America/New_York')).toEqual(['2026-11-01T04:00:00.000Z', '2026-12-01T04:59:59.999Z']);
  });

  it('New York repeated hour: each pass of 01:00-01:59 is its own real hour', () => {
    expect(window('hourly', '2026-11-01T05:30:00Z', 'America/New_York')).toEqual(['2026-11-01T05:00:00.000Z', '2026-11-01T05:59:59.999Z']);
    expect(window('hourly', '2026-11-01T06:30:00Z', 'America/New_York')).toEqual(['2026-11-01T06:00:00.000Z', '2026-11-01T06:59:59.999Z']);
  });

  it('rejects an unknown zone', () => {
    expect(() => waitWindow('daily', new Date('2026-03-04T10:00:00Z'), 'Mars/Olympus')).toThrow(ValidationError);
  });
});
