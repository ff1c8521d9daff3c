/**
 * The retention function's work (functions/retention/handler.ts is the entry point): its daily schedule or the
 * scheduler's nudge starts it. Issue 17: at its hour, an engine asleep until a wake within a day leaves the pass to
 * that wake instead of waking Aurora for it alone; the scheduler nudges this function when it next puts the engine
 * to sleep and a pass is owed (core/services/retention-service.ts isRetentionDue). A nudge always runs the pass.
 */
import type { Context } from 'aws-lambda';
import { runRetentionPass, shouldDeferRetention } from '../../core/services/retention-service';
import type { RetentionConfig } from '../config/config';
import { parseTickEvent, TICK_KIND } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';

/** Time left when the pass stops taking new batches: one batch is one short transaction, well under this. */
export const STOP_BEFORE_TIMEOUT_MS = 60_000;

export function retentionFunction(runtime: LambdaRuntime<RetentionConfig>) {
  const { config, logger } = runtime;
  return async (event: unknown, context: Context) => {
    const trigger = parseTickEvent(event);
    if (trigger === TICK_KIND.scheduled) {
      // Read before anything touches the database: a deferred run leaves Aurora paused.
      const now = new Date();
      const asleepUntil = await runtime.sleep.asleepUntil(now);
      if (shouldDeferRetention(asleepUntil, now)) {
        logger.info('retention left to the next wake', { asleepUntil: asleepUntil?.toISOString() });
        return { deferredUntil: asleepUntil?.toISOString() };
      }
    }
    const { stores, clock } = runtime.services;
    // Marked before deleting: the scheduler starts no second pass meanwhile.
    await stores.retention.recordPassStart(clock.now());
    const result = await runRetentionPass({
      store: stores.retention,
      clock,
      globalDays: config.retentionDays,
      shouldContinue: () => context.getRemainingTimeInMillis() > STOP_BEFORE_TIMEOUT_MS,
    });
    logger.info('retention done', { trigger, retentionDays: config.retentionDays, ...result });
    return result;
  };
}
