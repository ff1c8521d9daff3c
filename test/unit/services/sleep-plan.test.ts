import { describe, expect, it } from 'vitest';
import type { Definition } from '../../../core/model';
import { DEFAULT_SLEEP_SETTINGS, planSleep, sleepHolds, type WorkInFlight } from '../../../core/services/sleep-plan';
import type { ScheduledDefinition } from '../../../core/services/scheduler-service';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const NOW = new Date('2026-03-01T12:00:30Z');
const IDLE: WorkInFlight = { tokens: 0, executions: 0, workers: 0, pendingDeliveries: 0, unsettledEvents: 0 };

const scheduled = (crons: string[], timeZone = 'UTC', suspended = false): ScheduledDefinition => ({
  definition: { id: 1, timeZone, suspended } as Definition,
  crons,
  suspendCrons: [],
});
const plan = (input: Partial<Parameters<typeof planSleep>[0]> = {}) =>
  planSleep({ now: NOW, work: IDLE, schedules: [], errorsSince: [], remindAfterMs: DAY, ...input });

describe('planSleep', () => {
  it('sleeps the longest sleep when nothing is in flight and nothing is due', () => {
    expect(plan()).toEqual({ sleep: true, until: new Date(NOW.getTime() + DEFAULT_SLEEP_SETTINGS.maxSleepMs) });
  });

  it('stays awake while anything is in flight, naming what', () => {
    for (const key of Object.keys(IDLE) as (keyof WorkInFlight)[]) {
      expect(plan({ work: { ...IDLE, [key]: 2 } })).toEqual({ sleep: false, reasons: [`2 ${key}`] });
    }
  });

  it('wakes the lead before the next cron slot of any definition, suspended ones and other zones included', () => {
    // 13:00 UTC is the hourly cron's next slot; minute 30 in Tokyo (UTC+9) is 12:30 UTC.
    expect(plan({ schedules: [scheduled(['0 * * * *'])], settings: { ...DEFAULT_SLEEP_SETTINGS, maxSleepMs: 120 * MINUTE } })).toEqual({
      sleep: true,
      until: new Date(Date.parse('2026-03-01T13:00:00Z') - DEFAULT_SLEEP_SETTINGS.wakeLeadMs),
    });
    expect(plan({ schedules: [scheduled(['0 * * * *']), scheduled(['30 * * * *'], 'Asia/Tokyo', true)] })).toEqual({
      sleep: true,
      until: new Date(Date.parse('2026-03-01T12:30:00Z') - DEFAULT_SLEEP_SETTINGS.wakeLeadMs),
    });
  });

  it('does not sleep when the next slot is closer than the shortest sleep', () => {
    const result = plan({ schedules: [scheduled(['*/5 * * * *'])] });
    expect(result).toEqual({ sleep: false, reasons: ['next due 2026-03-01T12:05:00.000Z'] });
  });

  it('ignores a cron it cannot parse (the definition was validated when saved)', () => {
    expect(plan({ schedules: [scheduled(['not a cron'])] }).sleep).toBe(true);
  });

  it('wakes for the next daily reminder of an instance in error', () => {
    const erredAt = new Date(NOW.getTime() - DAY - 20 * MINUTE);
    const reminder = erredAt.getTime() + 2 * DAY;
    const result = plan({ errorsSince: [erredAt], settings: { ...DEFAULT_SLEEP_SETTINGS, maxSleepMs: 3 * DAY } });
    expect(result).toEqual({ sleep: true, until: new Date(reminder - DEFAULT_SLEEP_SETTINGS.wakeLeadMs) });
    const firstReminderSoon = new Date(NOW.getTime() - DAY + 4 * MINUTE);
    expect(plan({ errorsSince: [firstReminderSoon] }).sleep).toBe(false);
  });
});

describe('sleepHolds', () => {
  const until = new Date(NOW.getTime() + 30 * MINUTE);
  it('holds when the re-check would sleep as long or longer', () => {
    expect(sleepHolds(until, { sleep: true, until })).toBe(true);
    expect(sleepHolds(until, { sleep: true, until: new Date(until.getTime() + MINUTE) })).toBe(true);
  });
  it('fails when work arrived or an earlier slot appeared', () => {
    expect(sleepHolds(until, { sleep: false, reasons: ['1 tokens'] })).toBe(false);
    expect(sleepHolds(until, { sleep: true, until: new Date(until.getTime() - MINUTE) })).toBe(false);
  });
});
