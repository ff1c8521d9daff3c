/**
 * PLACEHOLDER written with the CDK app so that bundling has an entry; the real handler replaces this body.
 * It already parses its configuration once per container, so a deploy with a wrong environment fails loudly.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseMonitorConfig } from '../shared/config';

const config = parseMonitorConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const monitorHandler = async (): Promise<never> => {
  logger.error('placeholder handler invoked', { stage: config.stage });
  throw new Error('not implemented yet: monitor');
};

export const handler = middy(monitorHandler);
