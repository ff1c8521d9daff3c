/**
 * The notifier: notifier passes while they take work and time is left, then the outbox backlog metric
 * (app/lambda/notifier-function.ts).
 */
import { parseNotifierConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { notifierFunction } from '../../app/lambda/notifier-function';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime } from '../../app/lambda/lambda-runtime';
import { tickHandler } from '../../app/lambda/lambda-tick';

export const runtime = createLambdaRuntime(parseNotifierConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
export const handler = tickHandler(runtime, 'notifier', parseTickEvent, notifierFunction(runtime));
