/**
 * The monitor: one monitor pass per tick; lost executions nudge the processor, raised alerts the notifier
 * (app/lambda/monitor-function.ts). Its thresholds are read with the rest of the configuration at cold start.
 */
import { parseMonitorConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { monitorFunction } from '../../app/lambda/monitor-function';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime } from '../../app/lambda/lambda-runtime';
import { tickHandler } from '../../app/lambda/lambda-tick';

export const runtime = createLambdaRuntime(parseMonitorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
export const handler = tickHandler(runtime, 'monitor', parseTickEvent, monitorFunction(runtime));
