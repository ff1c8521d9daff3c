/**
 * The scheduler: one scheduler pass per tick, a nudge to the processor when a slot launched, then the idle-sleep
 * decision (app/lambda/scheduler-function.ts).
 */
import { parseSchedulerConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime } from '../../app/lambda/lambda-runtime';
import { tickHandler } from '../../app/lambda/lambda-tick';
import { schedulerFunction } from '../../app/lambda/scheduler-function';

export const runtime = createLambdaRuntime(parseSchedulerConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
export const handler = tickHandler(runtime, 'scheduler', parseTickEvent, schedulerFunction(runtime));
