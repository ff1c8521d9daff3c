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
  /** Asks for one run; resolves once an invoke that started after this call has returned (or failed). */
  nudge(): Promise<void>;
  /** Resolves once no invoke is in flight or queued (before a process exits or a Lambda returns). */
  settled(): Promise<void>;
  /** Invokes sent since creation (tests, benches). */
  readonly sent: number;
}

/** The event a nudged function receives. */
export const NUDGE_EVENT = { nudge: true } as const;

/** A nudger that does nothing (no function configured, local runs). */
export const noopNudger: Nudger = { nudge: () => Promise.resolve(), settled: () => Promise.resolve(), sent: 0 };

/** Creates a coalescing nudger over Lambda's asynchronous invoke. */
export function createLambdaNudger(options: LambdaNudgerOptions): Nudger {
  const payload = new TextEncoder().encode(JSON.stringify(options.payload ?? NUDGE_EVENT));
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let sent = 0;

  const invoke = async (): Promise<void> => {
    sent++;
    try {
      // 'Event': Lambda queues the event and answers at once (202); the nudged function runs on its own.
      await options.client.send(new InvokeCommand({ FunctionName: options.functionName, InvocationType: 'Event', Payload: payload }));
    } catch (error) {
      options.logger?.warn(`could not nudge ${options.functionName}`, { error: errorMessage(error) });
    }
  };

  const nudge = (): Promise<void> => {
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
