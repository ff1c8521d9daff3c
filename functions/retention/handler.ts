/**
 * The retention pass on AWS, once a day on its own schedule or in the wake of the engine's scheduler
 * (app/lambda/retention-function.ts): deletes finished and canceled instances past their retention in small batches
 * (core/services/retention-service.ts). Command output in CloudWatch Logs is left to the execution log group's
 * retention. It stops a minute before its timeout; the next day's run carries on.
 */
import type { Context } from 'aws-lambda';
import { parseRetentionConfig } from '../../app/config/config';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { retentionFunction } from '../../app/lambda/retention-function';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';

export { STOP_BEFORE_TIMEOUT_MS } from '../../app/lambda/retention-function';

// A 15-minute timeout (cdk/stacks/engine-stack.ts): a daily pass waits out a resume as long as the migrator does.
export const runtime = createLambdaRuntime(parseRetentionConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.migrator });
const run = retentionFunction(runtime);

export const handler = lambdaHandler(runtime, (event: unknown, context: Context) =>
  tickUnlessResuming(runtime.log, 'retention', () => run(event, context)),
);
