/**
 * The processor function: on the one-minute tick or a nudge (after a launch, a finished command), processor passes
 * while they move tokens and time is left (app/passes.ts), then a nudge to the notifier and a ring of the agents'
 * doorbell (the SQS queue EC2 agents long-poll, issue 18) if anything was written.
 */
import type { Context } from 'aws-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsDoorbell } from '../../adapters/aws/sqs-doorbell';
import type { ProcessorConfig } from '../config/config';
import { processorPass } from '../passes';
import type { TickKind } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';
import { lambdaNudgers, runPassTick } from './lambda-tick';

/** One invocation's work. */
export function processorFunction(runtime: LambdaRuntime<ProcessorConfig>) {
  const nudgers = lambdaNudgers(runtime.log, { notifier: runtime.config.notifierFunctionName });
  const pass = processorPass({ processorPass: () => runtime.services.processorPass() });
  const { doorbellQueueUrl } = runtime.config;
  const doorbell = doorbellQueueUrl ? new SqsDoorbell({ client: new SQSClient({}), queueUrl: doorbellQueueUrl }) : undefined;
  // A failed ring costs the agents their fallback poll, never the tick.
  const ring = async (n: number) => doorbell?.ring(n).catch((error: unknown) => runtime.log.warn('could not ring the doorbell', { error: String(error) }));
  return async (trigger: TickKind, context: Context) => {
    const result = await runPassTick(pass, nudgers, () => context.getRemainingTimeInMillis());
    // Lambda freezes the container on return: the ring is sent before, not left in flight.
    if (result.committed > 0) await ring(result.committed);
    runtime.logger.info('processor done', { trigger, ...result });
    return result;
  };
}
