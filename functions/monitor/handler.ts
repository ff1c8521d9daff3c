/**
 * The monitor: one monitor pass per tick. Executions it finished as lost nudge the processor (which fails their
 * tokens), and raised alerts nudge the notifier, so neither waits for its next minute.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger, type Nudger } from '../../adapters/aws/lambda-nudger';
import { readMonitorSettings, runMonitorPass } from '../../core/services/monitor-service';
import { MonitorRepository } from '../../db/repositories/monitor-repository';
import { parseMonitorConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { skipWhileAsleep } from '../../app/lambda/lambda-sleep';

export const runtime = createLambdaRuntime(parseMonitorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.tick });
const { config, logger } = runtime;
// Thresholds are read at cold start with the rest of the configuration: a bad value fails the deploy's first tick.
const settings = readMonitorSettings(process.env);
const lambda = new LambdaClient({});
const nudgerFor = (functionName: string | undefined): Nudger =>
  functionName ? createLambdaNudger({ client: lambda, functionName, logger: runtime.log }) : noopNudger;
const processor = nudgerFor(config.processorFunctionName);
const notifier = nudgerFor(config.notifierFunctionName);
let store: MonitorRepository | undefined;

export const handler = lambdaHandler(runtime, (event: unknown) =>
  tickUnlessResuming(runtime.log, 'monitor', () => tick(event)),
);

async function tick(event: unknown) {
  const trigger = parseTickEvent(event);
  const asleep = await skipWhileAsleep(runtime.sleep, trigger);
  if (asleep) return asleep;
  const { services } = runtime;
  store ??= new MonitorRepository(runtime.handle.db, services.ids);
  const result = await runMonitorPass({ store, clock: services.clock, ids: services.ids, settings });
  const raised = Object.values(result.raised).reduce((sum, n) => sum + n, 0);
  // Lambda freezes the container on return: the nudges are sent before, not left in flight.
  await Promise.all([
    result.lostExecutions > 0 ? processor.nudge() : undefined,
    raised > 0 ? notifier.nudge() : undefined,
  ]);
  logger.info('monitor done', { trigger, totalRaised: raised, ...result });
  return { ...result, totalRaised: raised };
}
