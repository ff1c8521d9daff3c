/**
 * The processor Lambda's work loop: processor passes back to back while they move tokens, so a chain of quick
 * steps (a noop, then the next node) completes in one invocation instead of one tick per node. It stops when a
 * pass commits nothing (the rest waits for agents, which nudge again) or when the invocation's remaining time
 * falls under a safety margin (a pass must never be cut by the Lambda timeout).
 */
import type { ProcessorPassResult } from '../../core/services/processor-service';

/** Left for one more pass and the return: one pass over a busy Data API can take several seconds. */
export const DEFAULT_SAFETY_MARGIN_MS = 15_000;

export const LOOP_STOP = { idle: 'idle', time: 'time' } as const;
export type LoopStop = (typeof LOOP_STOP)[keyof typeof LOOP_STOP];

export interface ProcessorLoopResult extends ProcessorPassResult {
  passes: number;
  stoppedBy: LoopStop;
}

/** Runs passes until one commits nothing or `remainingMs()` drops below the margin. */
export async function runProcessorLoop(
  pass: () => Promise<ProcessorPassResult>,
  remainingMs: () => number,
  safetyMarginMs = DEFAULT_SAFETY_MARGIN_MS,
): Promise<ProcessorLoopResult> {
  const total: ProcessorLoopResult = { passes: 0, stepped: 0, committed: 0, lostRaces: 0, stoppedBy: LOOP_STOP.idle };
  for (;;) {
    const result = await pass();
    total.passes++;
    total.stepped += result.stepped;
    total.committed += result.committed;
    total.lostRaces += result.lostRaces;
    if (result.committed === 0) return total;
    if (remainingMs() < safetyMarginMs) {
      total.stoppedBy = LOOP_STOP.time;
      return total;
    }
  }
}
