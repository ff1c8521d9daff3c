/**
 * PLACEHOLDER written with the CDK app so that bundling has an entry; the real handler replaces this body.
 * It already parses its configuration once per container, so a deploy with a wrong environment fails loudly.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseProcessorConfig } from '../shared/config';

const config = parseProcessorConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const processorHandler = async (): Promise<never> => {
  logger.error('placeholder handler invoked', { stage: config.stage });
  throw new Error('not implemented yet: processor');
};

export const handler = middy(processorHandler);
