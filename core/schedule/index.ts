/** Scheduling rules: cron, time zones, suspend schedules, prevent_multi, catch-up, wait windows, launched-by. */
export type { CronExpression, CronField, CronFieldName, CronResult, LocalTimeFields } from './cron-expression';
export { CRON_FIELD, cronMatches, cronMatchesDate, isWildcardCron, parseCron, parseCronOrThrow } from './cron-expression';
export type { DaySchedule } from './slot-search';
export { nextFireTime, SEARCH_HORIZON_YEARS, slotsBetween } from './slot-search';
export { isValidTimeZone, localTimeFields } from './time-zone';
export { isSuspended, nextLaunchTime, SUSPEND_PROBLEM, validateSuspendSchedules } from './suspend-schedule';
export { isLaunchBlocked, PREVENT_MULTI_BLOCKING_STATUSES, PREVENT_MULTI_CANCEL_MESSAGE } from './prevent-multi';
export type { SlotPlan, SlotPlanInput } from './catch-up-plan';
export { planSlots } from './catch-up-plan';
export type { TimeWindow } from './wait-window';
export { waitWindow } from './wait-window';
export { scheduledLaunchedBy } from './launched-by';
