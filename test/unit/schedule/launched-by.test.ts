import { describe, expect, it } from 'vitest';
import { scheduledLaunchedBy } from '../../../core/schedule';

const definition = { id: 12, name: 'nightly batch' };

describe('scheduledLaunchedBy', () => {
  it("has Kuroko2's shape with the slot in the definition zone", () => {
    expect(scheduledLaunchedBy(definition, new Date('2026-03-07T15:00:00Z'), '0 0 * * *', 'Asia/Tokyo')).toBe(
      '"#12 nightly batch" that is scheduled at 2026-03-08 00:00 Asia/Tokyo by `0 0 * * *`',
    );
    expect(scheduledLaunchedBy(definition, new Date('2026-01-05T09:05:00Z'), '5 9 * * 1', 'UTC')).toBe(
      '"#12 nightly batch" that is scheduled at 2026-01-05 09:05 UTC by `5 9 * * 1`',
    );
  });

  it('names the offset of a wall time that a fall-back repeats', () => {
    expect(scheduledLaunchedBy(definition, new Date('2026-11-01T05:30:00Z'), '30 * * * *', 'America/New_York')).toBe(
      '"#12 nightly batch" that is scheduled at 2026-11-01 01:30 America/New_York (UTC-04:00) by `30 * * * *`',
    );
    expect(scheduledLaunchedBy(definition, new Date('2026-11-01T06:30:00Z'), '30 * * * *', 'America/New_York')).toBe(
      '"#12 nightly batch" that is scheduled at 2026-11-01 01:30 America/New_York (UTC-05:00) by `30 * * * *`',
    );
    expect(scheduledLaunchedBy(definition, new Date('2026-11-01T07:30:00Z'), '30 * * * *', 'America/New_York')).toBe(
      '"#12 nightly batch" that is scheduled at 2026-11-01 02:30 America/New_York by `30 * * * *`',
    );
  });
});
