import { describe, expect, it } from 'vitest';
import { isSuspended, nextLaunchTime, parseCronOrThrow, SUSPEND_PROBLEM, validateSuspendSchedules } from '../../../core/schedule';

const crons = (...exprs: string[]) => exprs.map((e) => parseCronOrThrow(e));

describe('isSuspended', () => {
  it('matches the slot in the definition zone', () => {
    const suspend = crons('0 0 * * *');
    // 15:00Z is midnight in Tokyo, not in UTC.
    expect(isSuspended(suspend, new Date('2026-03-07T15:00:00Z'), 'Asia/Tokyo')).toBe(true);
    expect(isSuspended(suspend, new Date('2026-03-07T15:00:00Z'), 'UTC')).toBe(false);
    expect(isSuspended(suspend, new Date('2026-03-08T00:00:00Z'), 'UTC')).toBe(true);
  });

  it('matches any of several crons, and none when there are none', () => {
    const suspend = crons('0 0 * * *', '30 12 * * 6');
    expect(isSuspended(suspend, new Date('2026-03-07T12:30:00Z'), 'UTC')).toBe(true); // a Saturday
    expect(isSuspended(suspend, new Date('2026-03-08T12:30:00Z'), 'UTC')).toBe(false);
    expect(isSuspended([], new Date('2026-03-08T00:00:00Z'), 'UTC')).toBe(false);
  });
});

describe('validateSuspendSchedules', () => {
  it('accepts no suspend schedules at all, with or without launch schedules', () => {
    expect(validateSuspendSchedules([], [])).toEqual([]);
    expect(validateSuspendSchedules(crons('0 0 * * *'), [])).toEqual([]);
  });

  it('needs a launch schedule', () => {
    expect(validateSuspendSchedules([], crons('0 0 * * *'))).toEqual([SUSPEND_PROBLEM.needsLaunchSchedule]);
    expect(SUSPEND_PROBLEM.needsLaunchSchedule).toContain('needs at least one launch schedule');
  });

  it.each([
    ['0 0 * * *', ['0 0 1-31 * *']],
    ['0 0 * * 1', ['0 0 * * 1']],
    ['0 0 13 * 5', ['0 0 13 * *', '0 0 * * 5']],
    ['0 0 29 2 *', ['0 0 * 2 *']],
    ['0,30 * * * *', ['0 * * * *', '30 * * * *']],
    ['0 0 31 * *', ['0 0 * 1,3,5,7,8,10,12 *']],
    ['0 0 * * 0', ['0 0 1 * 0']],
    ['*/15 9-17 * * 1-5', ['* 9-17 * * 1-5']],
  ])('launch %j is wholly suspended by %j', (launch, suspend) => {
    expect(validateSuspendSchedules(crons(launch), crons(...suspend))).toEqual([SUSPEND_PROBLEM.suspendsEveryLaunch]);
    expect(SUSPEND_PROBLEM.suspendsEveryLaunch).toContain('suspends every launch');
  });

  it.each([
    [['0 0 * * 1'], ['0 0 1-15 * *']],
    [['0 0 13 * 5'], ['0 0 13 * *']],
    [['0 0 29 2 *'], ['0 0 1-28 2 *']],
    [['0,30 * * * *'], ['0 * * * *']],
    [['0 0 * * *', '0 12 * * *'], ['0 0 * * *']],
    [['0 0 * * 0'], ['0 0 1-7,8-14,15-21,22-28 * *']],
    [['0 0 * * *'], ['0 0 1-30 * *']],
    [['* * * * *'], ['* * * * 0-5']],
  ])('launch %j keeps some launches despite %j', (launch, suspend) => {
    expect(validateSuspendSchedules(crons(...launch), crons(...suspend))).toEqual([]);
  });
});

describe('nextLaunchTime', () => {
  it('skips suspended slots', () => {
    // Mondays of January 2026: 5, 12, 19; the first half of the month is suspended.
    expect(nextLaunchTime(crons('0 0 * * 1'), crons('0 0 1-15 * *'), new Date('2026-01-01T00:00:00Z'), 'UTC')?.toISOString()).toBe(
      '2026-01-19T00:00:00.000Z',
    );
  });

  it('is the earliest over several launch crons, and equals nextFireTime without suspends', () => {
    const after = new Date('2026-03-07T10:00:00Z');
    expect(nextLaunchTime(crons('0 12 * * *', '0 11 * * *'), [], after, 'UTC')?.toISOString()).toBe('2026-03-07T11:00:00.000Z');
    expect(nextLaunchTime(crons('0 12 * * *', '0 11 * * *'), crons('0 11 * * *'), after, 'UTC')?.toISOString()).toBe(
      '2026-03-07T12:00:00.000Z',
    );
  });

  it('works in the definition zone across DST', () => {
    // Friday 2026-03-06 10:00 EST; weekends suspended; Monday 09:00 is EDT.
    expect(
      nextLaunchTime(crons('0 9 * * *'), crons('0 9 * * 0,6'), new Date('2026-03-06T15:00:00Z'), 'America/New_York')?.toISOString(),
    ).toBe('2026-03-09T13:00:00.000Z');
  });

  it('is undefined when there is nothing to launch', () => {
    const after = new Date('2026-01-01T00:00:00Z');
    expect(nextLaunchTime(crons('0 0 * * *'), crons('0 0 1-31 * *'), after, 'UTC')).toBeUndefined();
    expect(nextLaunchTime([], [], after, 'UTC')).toBeUndefined();
  });
});
