/**
 * The processor: on the one-minute tick or a nudge (after a launch, a finished command), runs processor passes
 * while they move tokens, then nudges the notifier if anything was written.
 */
import type { Context } from 'aws-lambda';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger } from '../../aws/lambda-nudger';
import { parseProcessorConfig } from '../shared/config';
import { parseTickEvent } from '../shared/lambda-events';
import { runProcessorLoop } from '../shared/lambda-processor-loop';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../shared/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../shared/lambda-runtime';
import { skipWhileAsleep } from '../shared/lambda-sleep';

export const runtime = createLambdaRuntime(parseProcessorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.longTick });
const { config, logger } = runtime;
const notifier = config.notifierFunctionName
  ? createLambdaNudger({ client: new LambdaClient({}), functionName: config.notifierFunctionName, logger: runtime.log })
  : noopNudger;

export const handler = lambdaHandler(runtime, (event: unknown, context: Context) =>
  tickUnlessResuming(runtime.log, 'processor', () => tick(event, context)),
);

async function tick(event: unknown, context: Context) {
  const trigger = parseTickEvent(event);
  const asleep = await skipWhileAsleep(runtime.sleep, trigger);
  if (asleep) return asleep;
  const result = await runProcessorLoop(() => runtime.services.processorPass(), () => context.getRemainingTimeInMillis());
  // Lambda freezes the container on return: the nudge is sent before, not left in flight.
  if (result.committed > 0) await notifier.nudge();
  logger.info('processor done', { trigger, ...result });
  return result;
}
