/**
 * The scheduler function: one scheduler pass per tick, a nudge to the processor when a slot launched (app/passes.ts).
 * With an idle-sleep parameter it then decides whether the engine may sleep until the next due slot
 * (app/lambda/lambda-sleep.ts).
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger } from '../../adapters/aws/lambda-nudger';
import { DEFAULT_MONITOR_SETTINGS } from '../../core/services/monitor-service';
import { isRetentionDue } from '../../core/services/retention-service';
import { runSchedulerPass, type ScheduledDefinition } from '../../core/services/scheduler-service';
import { DEFAULT_SLEEP_SETTINGS } from '../../core/services/sleep-plan';
import type { SchedulerConfig } from '../config/config';
import { SLEEP_MAX_MINUTES } from '../config/env-keys';
import { SCHEDULER_POLICY } from '../passes';
import type { TickKind } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';
import { sleepIfIdle, type SleepOutcome } from './lambda-sleep';
import { lambdaNudgers, passResult, runPassTick } from './lambda-tick';

const MINUTE_MS = 60_000;

/** One invocation's work. */
export function schedulerFunction(runtime: LambdaRuntime<SchedulerConfig>) {
  const { config } = runtime;
  const nudgers = lambdaNudgers(runtime.log, { processor: config.processorFunctionName });
  // No cap unless configured: asleep until just before the next thing due (SLEEP_MAX_MINUTES when nothing is).
  const sleepSettings = { ...DEFAULT_SLEEP_SETTINGS, maxSleepMs: (config.sleepMaxMinutes ?? SLEEP_MAX_MINUTES.max) * MINUTE_MS };
  const retention = config.retention;
  const retentionNudger = retention
    ? createLambdaNudger({ client: new LambdaClient({}), functionName: retention.functionName, logger: runtime.log })
    : noopNudger;
  return async (_trigger: TickKind) => {
    const { services } = runtime;
    const { schedules, sleeps, monitor } = services.stores;
    // The schedules the pass reads serve the first sleep decision as well; the re-check after publishing a sleep
    // reads them again, so a schedule added meanwhile is seen.
    let passSchedules: Promise<ScheduledDefinition[]> | undefined;
    const store = {
      advanceLastPass: (now: Date) => schedules.advanceLastPass(now),
      listScheduledDefinitions: () => (passSchedules = schedules.listScheduledDefinitions()),
      reopenEdited: schedules.reopenEdited.bind(schedules),
      listDueDefinitions: schedules.listDueDefinitions.bind(schedules),
      setNextFires: schedules.setNextFires.bind(schedules),
      launchSlot: schedules.launchSlot.bind(schedules),
      recordSlot: schedules.recordSlot.bind(schedules),
    };
    const pass = { ...SCHEDULER_POLICY, run: () => runSchedulerPass(store, services.clock, services.ids) };
    const result = passResult(await runPassTick(pass, nudgers));
    let sleep: SleepOutcome | undefined;
    if (config.sleepParameter !== undefined) {
      sleep = await sleepIfIdle({
        gate: runtime.sleep,
        source: {
          workInFlight: (now) => sleeps.workInFlight(now),
          errorsSince: () => monitor.errorTimes(),
          listScheduledDefinitions: () => {
            const read = passSchedules;
            passSchedules = undefined;
            return read ?? schedules.listScheduledDefinitions();
          },
        },
        now: () => services.clock.now(),
        remindAfterMs: DEFAULT_MONITOR_SETTINGS.remindFailureAfterMs,
        settings: sleepSettings,
      });
    }
    // The engine goes to sleep: a retention pass owed since its daily slot runs in this wake (issue 17); one more read.
    let retentionNudged = false;
    if (retention && sleep !== undefined && 'asleepUntil' in sleep) {
      const now = services.clock.now();
      if (isRetentionDue(await services.stores.retention.lastPassStartedAt(), now, retention.hourUtc)) {
        await retentionNudger.nudge();
        retentionNudged = true;
      }
    }
    runtime.logger.info('scheduler done', { ...result, ...sleep, ...(retentionNudged ? { retentionNudged } : {}) });
    return { ...result, ...(sleep ? { sleep } : {}) };
  };
}
