/**
 * The processor function: on the one-minute tick or a nudge (after a launch, a finished command), processor passes
 * while they move tokens and time is left (app/passes.ts), then a nudge to the notifier if anything was written.
 */
import type { Context } from 'aws-lambda';
import type { ProcessorConfig } from '../config/config';
import { processorPass } from '../passes';
import type { TickKind } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';
import { lambdaNudgers, runPassTick } from './lambda-tick';

/** One invocation's work. */
export function processorFunction(runtime: LambdaRuntime<ProcessorConfig>) {
  const nudgers = lambdaNudgers(runtime.log, { notifier: runtime.config.notifierFunctionName });
  const pass = processorPass({ processorPass: () => runtime.services.processorPass() });
  return async (trigger: TickKind, context: Context) => {
    const result = await runPassTick(pass, nudgers, () => context.getRemainingTimeInMillis());
    runtime.logger.info('processor done', { trigger, ...result });
    return result;
  };
}
