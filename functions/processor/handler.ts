/**
 * The processor: on the one-minute tick or a nudge (after a launch, a finished command), runs processor passes
 * while they move tokens, then nudges the notifier and rings the agents' doorbell if anything was written.
 */
import type { Context } from 'aws-lambda';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsDoorbell } from '../../adapters/aws/sqs-doorbell';
import { createLambdaNudger, noopNudger } from '../../adapters/aws/lambda-nudger';
import { parseProcessorConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { runProcessorLoop } from '../../app/lambda/lambda-processor-loop';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { skipWhileAsleep } from '../../app/lambda/lambda-sleep';

export const runtime = createLambdaRuntime(parseProcessorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.longTick });
const { config, logger } = runtime;
const notifier = config.notifierFunctionName
  ? createLambdaNudger({ client: new LambdaClient({}), functionName: config.notifierFunctionName, logger: runtime.log })
  : noopNudger;
// Wakes the agents on EC2 (issue 18); a failed ring costs their fallback poll, never the tick.
const doorbell = config.doorbellQueueUrl ? new SqsDoorbell({ client: new SQSClient({}), queueUrl: config.doorbellQueueUrl }) : undefined;
const ring = (n: number) => doorbell?.ring(n).catch((error: unknown) => runtime.log.warn('could not ring the doorbell', { error: String(error) }));

export const handler = lambdaHandler(runtime, (event: unknown, context: Context) =>
  tickUnlessResuming(runtime.log, 'processor', () => tick(event, context)),
);

async function tick(event: unknown, context: Context) {
  const trigger = parseTickEvent(event);
  const asleep = await skipWhileAsleep(runtime.sleep, trigger);
  if (asleep) return asleep;
  const result = await runProcessorLoop(() => runtime.services.processorPass(), () => context.getRemainingTimeInMillis());
  // Lambda freezes the container on return: the nudge is sent before, not left in flight.
  if (result.committed > 0) await Promise.all([notifier.nudge(), ring(result.committed)]);
  logger.info('processor done', { trigger, ...result });
  return result;
}
