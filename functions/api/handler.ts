/**
 * The API Lambda: the shared Hono app behind `hono/aws-lambda` (http/lambda-api.ts). Configuration is parsed once
 * per container, at cold start.
 */
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { parseApiConfig } from '../../app/config/config';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { apiFunction } from '../../http/lambda-api';

const config = parseApiConfig(process.env);
export const runtime = createLambdaRuntime(config, { services: { declaredQueues: config.declaredQueues }, resumeWaitMs: RESUME_WAIT_MS.api });
const api = apiFunction(runtime);
export const handler = lambdaHandler(runtime, (event: LambdaEvent, context: LambdaContext) => api(event, context));
