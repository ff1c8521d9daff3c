/**
 * The monitor function: one monitor pass per tick with the configured thresholds. Executions it finished as lost
 * nudge the processor (which fails their tokens), raised alerts nudge the notifier (app/passes.ts).
 */
import type { MonitorConfig } from '../config/config';
import { monitorPass, totalRaised } from '../passes';
import type { TickKind } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';
import { lambdaNudgers, passResult, runPassTick } from './lambda-tick';

/** One invocation's work. */
export function monitorFunction(runtime: LambdaRuntime<MonitorConfig>) {
  const { config } = runtime;
  const nudgers = lambdaNudgers(runtime.log, { processor: config.processorFunctionName, notifier: config.notifierFunctionName });
  return async (trigger: TickKind) => {
    const result = passResult(await runPassTick(monitorPass(runtime.services, config.monitor), nudgers));
    const raised = totalRaised(result);
    runtime.logger.info('monitor done', { trigger, totalRaised: raised, ...result });
    return { ...result, totalRaised: raised };
  };
}
