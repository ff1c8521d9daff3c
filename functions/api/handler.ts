/**
 * PLACEHOLDER written with the CDK app so that bundling has an entry; the real handler replaces this body.
 * It already parses its configuration once per container, so a deploy with a wrong environment fails loudly.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseApiConfig } from '../shared/config';

const config = parseApiConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const apiHandler = async (): Promise<never> => {
  logger.error('placeholder handler invoked', { stage: config.stage });
  throw new Error('not implemented yet: api');
};

export const handler = middy(apiHandler);
