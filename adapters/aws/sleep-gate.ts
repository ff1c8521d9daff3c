/**
 * The idle-sleep hint in an SSM parameter (a String, standard tier: no charge). The scheduler writes
 * `{"state":"asleep","until":...}` when nothing is in flight (core/services/sleep-plan.ts); the one-minute ticks
 * read it and leave the database alone until then; an API write writes `{"state":"awake"}`.
 *
 * Fails open: a value that cannot be read or parsed counts as awake, so the worst a broken hint does is keep
 * Aurora awake. A wake whose read or write fails is logged, never thrown: the work that asked for it is already
 * committed, and a sleep ends by itself at its `until`. A failed read writes nothing, so SSM throttling under a
 * burst of API writes (when the engine is awake anyway) does not turn into a burst of writes.
 */
import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { errorMessage } from '../../core/errors';
import type { Logger } from '../../core/ports';
import { readParameter } from './ssm-parameters';

import { SLEEP_STATE } from './sleep-value';

export { INITIAL_SLEEP_VALUE, SLEEP_STATE } from './sleep-value';

export interface SleepGate {
  /** When the current sleep ends; undefined when awake, when it already ended, or when the hint cannot be read. */
  asleepUntil(now: Date): Promise<Date | undefined>;
  /** Publishes a sleep until `until`; throws when the write fails (the caller then stays awake). */
  sleep(until: Date, now: Date): Promise<void>;
  /** Ends a current sleep; true when there was one to end. */
  wake(reason: string, now: Date): Promise<boolean>;
}

type SleepLog = Pick<Logger, 'info' | 'warn'>;

/** Without a parameter (local mode, tests of other things): never asleep. */
export const ALWAYS_AWAKE: SleepGate = {
  asleepUntil: () => Promise.resolve(undefined),
  sleep: () => Promise.resolve(),
  wake: () => Promise.resolve(false),
};

/** Reads the sleep end out of a parameter value; undefined for awake or anything unexpected. */
export function parseSleepValue(value: string): Date | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { state, until } = parsed as { state?: unknown; until?: unknown };
  if (state !== SLEEP_STATE.asleep || typeof until !== 'string') return undefined;
  const at = new Date(until);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

export function createSsmSleepGate(options: { client: SSMClient; parameterName: string; logger: SleepLog }): SleepGate {
  const { client, parameterName: Name, logger } = options;
  const put = (value: Record<string, string>) =>
    client.send(new PutParameterCommand({ Name, Value: JSON.stringify(value), Type: 'String', Overwrite: true }));
  const current = async (now: Date): Promise<Date | undefined> => {
    const until = parseSleepValue(await readParameter(client, Name));
    return until !== undefined && until > now ? until : undefined;
  };
  return {
    async asleepUntil(now) {
      try {
        return await current(now);
      } catch (error) {
        logger.warn('could not read the sleep parameter; acting awake', { parameter: Name, error: errorMessage(error) });
        return undefined;
      }
    },
    async sleep(until, now) {
      await put({ state: SLEEP_STATE.asleep, until: until.toISOString(), since: now.toISOString() });
    },
    async wake(reason, now) {
      try {
        // Written only over a sleep, so a busy engine does not write on every request.
        if ((await current(now)) === undefined) return false;
        await put({ state: SLEEP_STATE.awake, since: now.toISOString(), reason });
        logger.info('woke the engine', { reason });
        return true;
      } catch (error) {
        logger.warn('could not end the sleep; the ticks resume at its end', { parameter: Name, reason, error: errorMessage(error) });
        return false;
      }
    },
  };
}
