/**
 * Idle sleep in the tick functions (the decision is core/services/sleep-plan.ts, the hint adapters/aws/sleep-gate.ts).
 *
 * - Every tick function starts with `skipWhileAsleep`: a scheduled tick during a sleep returns at once, before
 *   any statement reaches the database, so Aurora can pause. A nudge always runs its pass.
 * - The scheduler ends each pass with `sleepIfIdle`: with nothing in flight it publishes a sleep until the next
 *   due slot (less a lead), then reads the database again and takes the sleep back if work arrived meanwhile.
 *   Work committed before the sleep is published is seen by that re-check. Work from outside the engine comes
 *   through the api, which ends the sleep after every write; work from inside (a nudge, an agent's finish) only
 *   exists while something is in flight, when the scheduler does not sleep. So no work waits for a sleep's end.
 */
import type { Logger } from '../../core/ports';
import { SSMClient } from '@aws-sdk/client-ssm';
import { ALWAYS_AWAKE, createSsmSleepGate, type SleepGate } from '../../adapters/aws/sleep-gate';
import { errorMessage } from '../../core/errors';
import type { ScheduledDefinition } from '../../core/services/scheduler-service';
import { busyReasons, planSleep, sleepHolds, type SleepPlan, type SleepSettings, type WorkInFlight } from '../../core/services/sleep-plan';
import { TICK_KIND, type TickKind } from './lambda-events';

/** What a tick returns when it slept through. */
export interface Asleep {
  asleepUntil: string;
}

type GateLog = Pick<Logger, 'info' | 'warn'>;

/** The gate of a function: the SSM parameter when configured, else never asleep. */
export function sleepGateFor(parameterName: string | undefined, logger: GateLog): SleepGate {
  if (parameterName === undefined) return ALWAYS_AWAKE;
  return createSsmSleepGate({ client: new SSMClient({}), parameterName, logger });
}

/** For a scheduled tick during a sleep, what to return instead of a pass (undefined: run the pass). */
export async function skipWhileAsleep(gate: SleepGate, trigger: TickKind): Promise<Asleep | undefined> {
  if (trigger === TICK_KIND.nudge) return undefined;
  const until = await gate.asleepUntil(new Date());
  return until === undefined ? undefined : { asleepUntil: until.toISOString() };
}

/** What the sleep decision reads. */
export interface SleepSource {
  workInFlight(now: Date): Promise<WorkInFlight>;
  listScheduledDefinitions(): Promise<ScheduledDefinition[]>;
  errorsSince(): Promise<Date[]>;
}

export type SleepOutcome = Asleep | { awake: string[] };

/** Publishes a sleep when nothing is in flight; takes it back when the re-check after publishing finds work. */
export async function sleepIfIdle(options: {
  gate: SleepGate;
  source: SleepSource;
  now: () => Date;
  remindAfterMs: number;
  settings: SleepSettings;
}): Promise<SleepOutcome> {
  const { gate, source, now } = options;
  const plan = async (): Promise<SleepPlan> => {
    const at = now();
    const work = await source.workInFlight(at);
    // A busy engine (most passes of a busy day) pays one statement for the decision, not five.
    const reasons = busyReasons(work);
    if (reasons.length > 0) return { sleep: false, reasons };
    const [schedules, errorsSince] = await Promise.all([source.listScheduledDefinitions(), source.errorsSince()]);
    return planSleep({ now: at, work, schedules, errorsSince, remindAfterMs: options.remindAfterMs, settings: options.settings });
  };
  const first = await plan();
  if (!first.sleep) return { awake: first.reasons };
  try {
    await gate.sleep(first.until, now());
  } catch (error) {
    // The pass itself went well: stay awake rather than fail it. A write that failed late may have landed anyway.
    await gate.wake('could not publish the sleep', now());
    return { awake: [`could not publish the sleep: ${errorMessage(error)}`] };
  }
  let recheck: SleepPlan;
  try {
    recheck = await plan();
  } catch (error) {
    // A sleep that could not be checked again is not kept: work may have arrived while it was published.
    await gate.wake('could not check the sleep again', now());
    throw error;
  }
  if (sleepHolds(first.until, recheck)) return { asleepUntil: first.until.toISOString() };
  await gate.wake('work arrived while going to sleep', now());
  return { awake: recheck.sleep ? ['an earlier slot was added'] : recheck.reasons };
}
