/**
 * The retention pass on AWS, once a day on its own schedule: deletes finished and canceled instances past their
 * retention in small batches (core/services/retention-service.ts). Command output in CloudWatch Logs is left to the
 * execution log group's retention. It stops a minute before its timeout; the next day's run carries on.
 */
import type { Context } from 'aws-lambda';
import { runRetentionPass } from '../../core/services/retention-service';
import { parseRetentionConfig } from '../../app/config/config';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';

/** Time left when the pass stops taking new batches: one batch is one short transaction, well under this. */
export const STOP_BEFORE_TIMEOUT_MS = 60_000;

// A 15-minute timeout (cdk/stacks/engine-stack.ts): a daily pass waits out a resume as long as the migrator does.
export const runtime = createLambdaRuntime(parseRetentionConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.migrator });
const { config, logger } = runtime;

export const handler = lambdaHandler(runtime, (_event: unknown, context: Context) =>
  tickUnlessResuming(runtime.log, 'retention', async () => {
    const result = await runRetentionPass({
      store: runtime.services.stores.retention,
      clock: runtime.services.clock,
      globalDays: config.retentionDays,
      shouldContinue: () => context.getRemainingTimeInMillis() > STOP_BEFORE_TIMEOUT_MS,
    });
    logger.info('retention done', { retentionDays: config.retentionDays, ...result });
    return result;
  }),
);
