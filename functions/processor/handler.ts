/**
 * The processor: on the one-minute tick or a nudge, processor passes while they move tokens, then a nudge to the
 * notifier if anything was written (app/lambda/processor-function.ts, app/passes.ts).
 */
import { parseProcessorConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { processorFunction } from '../../app/lambda/processor-function';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime } from '../../app/lambda/lambda-runtime';
import { tickHandler } from '../../app/lambda/lambda-tick';

export const runtime = createLambdaRuntime(parseProcessorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.longTick });
export const handler = tickHandler(runtime, 'processor', parseTickEvent, processorFunction(runtime));
