/**
 * Nudges a Lambda function (the processor, the notifier) with an asynchronous invoke so work moves within
 * seconds instead of at the next one-minute tick. A nudge is only a hint: the tick covers a lost one, so a failed
 * invoke is logged and never thrown.
 *
 * Bursts coalesce: at most one invoke is in flight per nudger, plus one queued behind it. Every nudge asked for
 * while one is in flight is answered by the queued one, which starts after the call in flight has returned, so
 * the function always runs after the last change it was nudged for.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { errorMessage } from '../../core/errors';
import type { Logger } from '../../core/ports';

export type NudgeLogger = Pick<Logger, 'warn'>;

export interface LambdaNudgerOptions {
  client: LambdaClient;
  functionName: string;
  /** The event the function receives; `{ "nudge": true }` by default. */
  payload?: unknown;
  logger?: NudgeLogger;
}

export interface Nudger {
  /**
   * Asks for one run; resolves once an invoke that started after this call has returned (or failed). `finished`: the
   * id of a command whose end is already written, carried as a hint in the event (`finished`, at most
   * MAX_FINISHED_HINTS per invoke; more are dropped: the function's own listing finds them).
   */
  nudge(finished?: number): Promise<void>;
  /** Resolves once no invoke is in flight or queued (before a process exits or a Lambda returns). */
  settled(): Promise<void>;
  /** Invokes sent since creation (tests, benches). */
  readonly sent: number;
}

/** The event a nudged function receives. */
export const NUDGE_EVENT = { nudge: true } as const;

/**
 * Finished commands one nudge names (the processor reads them first, beside its lease: issue 18, AWS W1). The hint
 * carries no state: the processor reads each command and its token, and steps only a command whose end it reads.
 * Small enough that their rows, each at most the Data API's 64 KB, fit one response.
 */
export const MAX_FINISHED_HINTS = 10;

/** A nudger that does nothing (no function configured, local runs). */
export const noopNudger: Nudger = { nudge: () => Promise.resolve(), settled: () => Promise.resolve(), sent: 0 };

/** Creates a coalescing nudger over Lambda's asynchronous invoke. */
export function createLambdaNudger(options: LambdaNudgerOptions): Nudger {
  const event = (options.payload ?? NUDGE_EVENT) as object;
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let sent = 0;
  /** Hints for the next invoke (the queued one while one is in flight). */
  let finished: number[] = [];

  const invoke = async (): Promise<void> => {
    sent++;
    const hints = finished;
    finished = [];
    const payload = new TextEncoder().encode(JSON.stringify(hints.length > 0 ? { ...event, finished: hints } : event));
    try {
      // 'Event': Lambda queues the event and answers at once (202); the nudged function runs on its own.
      await options.client.send(new InvokeCommand({ FunctionName: options.functionName, InvocationType: 'Event', Payload: payload }));
    } catch (error) {
      options.logger?.warn(`could not nudge ${options.functionName}`, { error: errorMessage(error) });
    }
  };

  const nudge = (hint?: number): Promise<void> => {
    if (hint !== undefined && finished.length < MAX_FINISHED_HINTS && !finished.includes(hint)) finished.push(hint);
    if (inFlight === undefined) {
      inFlight = invoke().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    }
    queued ??= inFlight.then(() => {
      queued = undefined;
      return nudge();
    });
    return queued;
  };

  return {
    nudge,
    settled: () => queued ?? inFlight ?? Promise.resolve(),
    get sent() {
      return sent;
    },
  };
}
