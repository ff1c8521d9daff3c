/** Issue 17: when the daily retention pass is owed, and when its scheduled run leaves it to the engine's next wake. */
import { describe, expect, it } from 'vitest';
import { isRetentionDue, latestRetentionSlot, shouldDeferRetention } from '../../../core/services/retention-service';

const at = (iso: string) => new Date(iso);

describe('retention in a wake', () => {
  it('takes the latest daily slot at or before now', () => {
    expect(latestRetentionSlot(at('2026-03-02T04:00:00Z'), 4)).toEqual(at('2026-03-02T04:00:00Z'));
    expect(latestRetentionSlot(at('2026-03-02T03:59:59Z'), 4)).toEqual(at('2026-03-01T04:00:00Z'));
    expect(latestRetentionSlot(at('2026-03-01T00:10:00Z'), 23)).toEqual(at('2026-02-28T23:00:00Z'));
  });

  it('owes a pass before the first, and after each daily slot until one starts', () => {
    expect(isRetentionDue(undefined, at('2026-03-02T03:01:00Z'), 4)).toBe(true);
    // Started yesterday at 03:01, before yesterday's 04:00 slot: today's 03:01 wake owes one.
    expect(isRetentionDue(at('2026-03-01T03:01:00Z'), at('2026-03-02T03:01:00Z'), 4)).toBe(true);
    // Started after the latest slot: nothing owed until the next one.
    expect(isRetentionDue(at('2026-03-01T04:30:00Z'), at('2026-03-02T03:01:00Z'), 4)).toBe(false);
    expect(isRetentionDue(at('2026-03-02T03:01:00Z'), at('2026-03-02T03:59:00Z'), 4)).toBe(false);
    expect(isRetentionDue(at('2026-03-02T03:01:00Z'), at('2026-03-02T04:00:00Z'), 4)).toBe(true);
  });

  it('defers the scheduled run only to a wake within a day; awake or asleep longer, it runs', () => {
    const now = at('2026-03-02T04:00:00Z');
    expect(shouldDeferRetention(at('2026-03-03T02:57:00Z'), now)).toBe(true);
    expect(shouldDeferRetention(at('2026-03-03T04:00:00Z'), now)).toBe(true);
    expect(shouldDeferRetention(at('2026-03-03T04:00:01Z'), now)).toBe(false);
    expect(shouldDeferRetention(undefined, now)).toBe(false);
  });
});
