/**
 * The processor function: on the one-minute tick or a nudge (after a launch, a finished command), processor passes
 * while they move tokens and time is left (app/passes.ts), then a nudge to the notifier and a ring of the agents'
 * doorbell (the SQS queue EC2 agents long-poll, issue 18) after each pass that queued commands. One invocation at a
 * time runs passes: the others ask the holder of the processor's lease to run again and return (./processor-lease.ts).
 */
import type { Context } from 'aws-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsDoorbell } from '../../adapters/aws/sqs-doorbell';
import type { ProcessorConfig } from '../config/config';
import { PROCESSOR_SAFETY_MARGIN_MS, processorPass } from '../passes';
import { STOPPED_BY, type NudgeTarget, type Pass } from '../run-while-busy';
import { TICK_KIND, finishedHintsOf, type TickKind } from './lambda-events';
import type { LambdaRuntime } from './lambda-runtime';
import { lambdaNudgers, runPassTick } from './lambda-tick';
import { runLeased, type LeaseGuard } from './processor-lease';

/**
 * How often a holder whose run goes on nudges the notifier for the events its passes wrote. A run nudges it when it
 * ends (a step's run: a few passes), and while it goes on at most this often: as the one runner, a busy holder's run
 * lasts as long as finishes keep coming (up to the time margin), and events would wait for its end. Not after every
 * pass: that Invoke beside the next pass cost W1 15 ms a step in bench:throughput's AWS mode.
 */
export const NOTIFIER_NUDGE_EVERY_MS = 1_000;

export interface ProcessorFunctionOptions {
  notifierNudgeEveryMs?: number;
}

/** One invocation's work. */
export function processorFunction(runtime: LambdaRuntime<ProcessorConfig>, options: ProcessorFunctionOptions = {}) {
  const nudgeEveryMs = options.notifierNudgeEveryMs ?? NOTIFIER_NUDGE_EVERY_MS;
  const nudgers = lambdaNudgers(runtime.log, { notifier: runtime.config.notifierFunctionName });
  const pass = processorPass({ processorPass: () => runtime.services.processorPass() });
  const { doorbellQueueUrl } = runtime.config;
  const doorbell = doorbellQueueUrl ? new SqsDoorbell({ client: new SQSClient({}), queueUrl: doorbellQueueUrl }) : undefined;
  // A failed ring costs the agents their fallback poll, never the tick.
  const ring = async (n: number, ids?: readonly number[]) => doorbell?.ring(n, ids).catch((error: unknown) => runtime.log.warn('could not ring the doorbell', { error: String(error) }));
  return async (trigger: TickKind, context: Context, event?: unknown) => {
    // Rung after each pass that queued commands (one message per command), not after the loop: the agents claim
    // while the next pass runs (the last pass of a run finds nothing: Data API calls the agents need not wait for).
    const sends: Promise<unknown>[] = [];
    const pending = new Set<NudgeTarget>();
    let sentAt = performance.now();
    const sendPending = () => {
      for (const target of pending) {
        const nudger = nudgers[target];
        if (nudger) sends.push(nudger.nudge());
      }
      pending.clear();
      sentAt = performance.now();
    };
    // The one-minute tick is the safety net for lost nudges: with nothing due it ends after one read, without the
    // lease's take and release (a nudge always takes the lease: the work it announces may be in a holder's pass).
    if (trigger === TICK_KIND.scheduled && !(await runtime.services.steps.hasDueWork())) {
      const idle = { ...pass.empty, passes: 0, stoppedBy: STOPPED_BY.idle, reruns: 0, heldElsewhere: false };
      runtime.logger.info('processor done', { trigger, ...idle });
      return idle;
    }
    const remainingMs = () => context.getRemainingTimeInMillis();
    const lease = runtime.services.stores.processorLease;
    // An agent's nudge names the commands it finished: their tokens are read beside the lease's take, and the first
    // pass steps them without listing (issue 18: two serial Data API calls less on AWS W1's path). Dropped when
    // another invocation holds the lease (the request this one leaves there brings its listing).
    // The step's transaction is begun beside them too (on the Data API: BeginTransaction is a call of its own); one
    // not taken (the lease held elsewhere, nothing to step) is rolled back before the invocation returns.
    const hints = finishedHintsOf(event);
    const { primer } = runtime.services.handle;
    if (hints.length > 0) {
      runtime.services.steps.hintFinished(hints);
      primer?.prime();
    }
    const result = await runLeased(pass.empty, { lease, remainingMs, marginMs: PROCESSOR_SAFETY_MARGIN_MS }, async (guard) => {
      try {
        return await runPassTick(leased(pass, guard), {}, remainingMs, (r, wakes) => {
          if (r.queued > 0) sends.push(ring(r.queued, r.queuedIds));
          for (const target of wakes) pending.add(target);
          if (performance.now() - sentAt >= nudgeEveryMs) sendPending();
        }, guard.held);
      } finally {
        sendPending();
        // Sent before the lease is let go, and before Lambda freezes the container on return: nothing left in flight.
        await Promise.allSettled(sends.splice(0));
      }
    }).finally(async () => {
      runtime.services.steps.dropHint();
      await primer?.release();
    });
    // The run's counts; the ids its last pass queued (the ring's hints) are no total and only lengthen the line.
    const { queuedIds: _queuedIds, ...counts } = result;
    runtime.logger.info('processor done', { trigger, hinted: hints.length, ...counts });
    return counts;
  };
}

/** The pass, renewing the lease first when half of it is used. */
function leased<R>(pass: Pass<R>, guard: LeaseGuard): Pass<R> {
  return {
    ...pass,
    run: async (budget) => {
      await guard.renewIfDue();
      return pass.run(budget);
    },
  };
}
