/**
 * The API Lambda: the shared Hono app behind `hono/aws-lambda`. Configuration is parsed once per container; a
 * launch, retry or skip nudges the processor function so the first step does not wait for its schedule.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { handle } from 'hono/aws-lambda';
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { CloudWatchLogSink } from '../../agent/cloudwatch-log-sink';
import { createDatabase } from '../../db/connection';
import { parseApiConfig } from '../shared/config';
import { createEngineServices } from '../shared/engine-services';
import { createHttpApp } from '../shared/http-app';
import { dataApiUrl } from '../shared/lambda-runtime';

const config = parseApiConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const services = createEngineServices(createDatabase(dataApiUrl(config.database)), { declaredQueues: config.declaredQueues });
const lambda = new LambdaClient({});
// One Lambda container serves one request at a time, so a module-level flag belongs to the current request.
let processorHasWork = false;
const app = createHttpApp({
  services,
  logger: {
    info: (message, extra) => logger.info(message, extra ?? {}),
    warn: (message, extra) => logger.warn(message, extra ?? {}),
    error: (message, extra) => logger.error(message, extra ?? {}),
  },
  declaredQueues: config.declaredQueues,
  // The agents stream each command's output to this group; the output endpoint reads it back.
  ...(config.executionLogGroupName
    ? { outputs: new CloudWatchLogSink({ client: new CloudWatchLogsClient({}), logGroupName: config.executionLogGroupName }) }
    : {}),
  onLaunch: () => {
    processorHasWork = true;
  },
});
const honoHandler = handle(app);

const apiHandler = async (event: LambdaEvent, context: LambdaContext) => {
  processorHasWork = false;
  const response = await honoHandler(event, context);
  if (processorHasWork && config.processorFunctionName) {
    try {
      await lambda.send(new InvokeCommand({ FunctionName: config.processorFunctionName, InvocationType: 'Event' }));
    } catch (error) {
      // The processor's own schedule picks the work up; a failed nudge only delays it.
      logger.warn('could not nudge the processor', { error: error instanceof Error ? error.message : String(error) });
    }
  }
  return response;
};

export const handler = middy(apiHandler);
