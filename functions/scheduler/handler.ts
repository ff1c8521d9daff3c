/**
 * The scheduler: one scheduler pass per tick; nudges the processor when a slot launched. With an idle-sleep
 * parameter it then decides whether the engine may sleep until the next due slot (app/lambda/lambda-sleep.ts).
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger } from '../../adapters/aws/lambda-nudger';
import { DEFAULT_MONITOR_SETTINGS } from '../../core/services/monitor-service';
import { runSchedulerPass, type ScheduledDefinition } from '../../core/services/scheduler-service';
import { DEFAULT_SLEEP_SETTINGS } from '../../core/services/sleep-plan';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import { SleepRepository } from '../../db/repositories/sleep-repository';
import { parseSchedulerConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { skipWhileAsleep, sleepIfIdle, type SleepOutcome } from '../../app/lambda/lambda-sleep';

const MINUTE_MS = 60_000;

export const runtime = createLambdaRuntime(parseSchedulerConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
const { config, logger } = runtime;
const processor = config.processorFunctionName
  ? createLambdaNudger({ client: new LambdaClient({}), functionName: config.processorFunctionName, logger: runtime.log })
  : noopNudger;
const sleepSettings = { ...DEFAULT_SLEEP_SETTINGS, maxSleepMs: config.sleepMaxMinutes * MINUTE_MS };

export const handler = lambdaHandler(runtime, (event: unknown) =>
  tickUnlessResuming(runtime.log, 'scheduler', () => tick(event)),
);

async function tick(event: unknown) {
  const asleep = await skipWhileAsleep(runtime.sleep, parseTickEvent(event));
  if (asleep) return asleep;
  const { services } = runtime;
  const { schedules } = services;
  // The schedules the pass reads serve the first sleep decision as well; the re-check after publishing a sleep reads
  // them again, so a schedule added meanwhile is seen.
  let passSchedules: Promise<ScheduledDefinition[]> | undefined;
  const result = await runSchedulerPass(
    {
      advanceLastPass: (now) => schedules.advanceLastPass(now),
      listScheduledDefinitions: () => (passSchedules = schedules.listScheduledDefinitions()),
      reopenEdited: (since) => schedules.reopenEdited(since),
      listDueDefinitions: (now, limit) => schedules.listDueDefinitions(now, limit),
      setNextFires: (fires) => schedules.setNextFires(fires),
      launchSlot: (slot, request) => schedules.launchSlot(slot, request),
      recordSlot: (slot, outcome, event) => schedules.recordSlot(slot, outcome, event),
    },
    services.clock,
    services.ids,
  );
  if (result.launched > 0) await processor.nudge();
  let sleep: SleepOutcome | undefined;
  if (config.sleepParameter !== undefined) {
    const sleeps = new SleepRepository(runtime.handle.db);
    const monitor = new MonitorRepository(runtime.handle.db, services.ids);
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
  logger.info('scheduler done', { ...result, ...sleep });
  return { ...result, ...(sleep ? { sleep } : {}) };
}
