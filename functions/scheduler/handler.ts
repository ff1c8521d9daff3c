/** The scheduler: one scheduler pass per tick; nudges the processor when a slot launched. */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger } from '../../aws/lambda-nudger';
import { parseSchedulerConfig } from '../shared/config';
import { parseTickEvent } from '../shared/lambda-events';
import { createLambdaRuntime, lambdaHandler } from '../shared/lambda-runtime';

export const runtime = createLambdaRuntime(parseSchedulerConfig(process.env));
const { config, logger } = runtime;
const processor = config.processorFunctionName
  ? createLambdaNudger({ client: new LambdaClient({}), functionName: config.processorFunctionName, logger: runtime.log })
  : noopNudger;

export const handler = lambdaHandler(runtime, async (event: unknown) => {
  parseTickEvent(event);
  const result = await runtime.services.schedulerPass();
  if (result.launched > 0) await processor.nudge();
  logger.info('scheduler done', { ...result });
  return result;
});
