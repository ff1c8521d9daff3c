/**
 * PLACEHOLDER written with the CDK app so that bundling has an entry; the real handler replaces this body.
 * It already parses its configuration once per container, so a deploy with a wrong environment fails loudly.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { parseProvisionerConfig } from '../shared/config';

const config = parseProvisionerConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const provisionerHandler = async (): Promise<never> => {
  logger.error('placeholder handler invoked', { stage: config.stage });
  throw new Error('not implemented yet: provisioner');
};

export const handler = middy(provisionerHandler);
