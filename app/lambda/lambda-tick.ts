/**
 * What every tick function (processor, scheduler, monitor, notifier, provisioner) shares: the nudgers of the functions
 * its pass may wake, and one run of its pass through the shared run-while-busy loop (app/run-while-busy.ts) whose
 * nudges are sent before the invocation returns (Lambda freezes the container on return: nothing is left in flight).
 */
import type { Context } from 'aws-lambda';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaNudger, noopNudger, type Nudger } from '../../adapters/aws/lambda-nudger';
import { NUDGE_TARGET, runWhileBusy, type BusyRun, type NudgeTarget, type Pass } from '../run-while-busy';
import type { BaseConfig } from '../config/config';
import type { TickKind } from './lambda-events';
import { tickUnlessResuming, type DatabaseResuming } from './lambda-resume';
import { lambdaHandler, type LambdaRuntime, type LogPort } from './lambda-runtime';
import { skipWhileAsleep, type Asleep } from './lambda-sleep';

/** The functions a pass may wake on AWS, by target (the agents poll: nothing to wake). */
export type LambdaNudgers = Partial<Record<NudgeTarget, Nudger>>;

/** Nudgers of the named functions; a function not configured is never nudged. */
export function lambdaNudgers(log: LogPort, functions: { processor?: string | undefined; notifier?: string | undefined }): LambdaNudgers {
  let client: LambdaClient | undefined;
  const nudgerFor = (functionName: string | undefined): Nudger => {
    if (functionName === undefined) return noopNudger;
    client ??= new LambdaClient({});
    return createLambdaNudger({ client, functionName, logger: log });
  };
  return { [NUDGE_TARGET.processor]: nudgerFor(functions.processor), [NUDGE_TARGET.notifier]: nudgerFor(functions.notifier) };
}

/**
 * Runs the pass while it is busy and time is left, then sends what it nudged. `afterPass` sees each pass's result as
 * it comes (the processor rings the agents' doorbell there, before its next pass); `keepGoing` false stops the run
 * before its next pass (the processor lost its lease).
 */
export async function runPassTick<R extends object>(
  pass: Pass<R>,
  nudgers: LambdaNudgers,
  remainingMs?: () => number,
  afterPass?: (result: R, nudges: readonly NudgeTarget[]) => void,
  keepGoing?: () => boolean,
): Promise<BusyRun<R>> {
  const { total, nudges } = await runWhileBusy(pass, {
    ...(remainingMs ? { remainingMs } : {}),
    ...(afterPass ? { afterPass } : {}),
    ...(keepGoing ? { keepGoing } : {}),
  });
  await Promise.all([...nudges].map((target) => nudgers[target]?.nudge()));
  return total;
}

/** The result of a function that runs one pass per tick: the pass's own result, without the loop's counters. */
export function passResult<R extends object>(total: BusyRun<R>): R {
  const { passes: _passes, stoppedBy: _stoppedBy, ...result } = total;
  return result as unknown as R;
}

/**
 * The handler of a tick function: a scheduled tick during an idle sleep returns at once (`asleep` may still decide
 * to run), a database still resuming is logged and skipped (app/lambda/lambda-resume.ts), else `tick` runs.
 */
export function tickHandler<C extends BaseConfig, T>(
  runtime: LambdaRuntime<C>,
  name: string,
  parse: (event: unknown) => TickKind,
  tick: (trigger: TickKind, context: Context, event: unknown) => Promise<T>,
  asleep: (skip: Asleep) => Promise<boolean> = () => Promise.resolve(true),
) {
  return lambdaHandler(runtime, (event: unknown, context: Context): Promise<T | Asleep | DatabaseResuming> =>
    tickUnlessResuming(runtime.log, name, async () => {
      const trigger = parse(event);
      const skip = await skipWhileAsleep(runtime.sleep, trigger);
      if (skip && (await asleep(skip))) return skip;
      return tick(trigger, context, event);
    }),
  );
}
