/**
 * PLACEHOLDER written with the CDK app so that bundling has an entry; the real handler replaces this body.
 * It already parses its configuration once per container, so a deploy with a wrong environment fails loudly.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseNotifierConfig } from '../shared/config';

const config = parseNotifierConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const notifierHandler = async (): Promise<never> => {
  logger.error('placeholder handler invoked', { stage: config.stage });
  throw new Error('not implemented yet: notifier');
};

export const handler = middy(notifierHandler);
