import type { WorkflowEngine } from '../engine/workflow-engine';
import type { Token } from '../model';
import type { StepReader, StepWriter } from '../ports';

/** The processor's view of the store. */
export interface ProcessorStore extends StepReader, StepWriter {
  /** Up to `limit` working or waiting tokens with ids above `afterId`, in id order. */
  listProcessableTokens(afterId: number, limit: number): Promise<Token[]>;
  /** Loads what the engine will read for these tokens in as few queries as possible. */
  prefetch(tokens: readonly Token[]): Promise<void>;
  clearPrefetch(): void;
  /** Archives finished commands whose token is gone (canceled or critical instances); returns how many. */
  archiveOrphanedExecutions(): Promise<number>;
}

export interface ProcessorPassResult {
  /** Tokens the engine looked at. */
  stepped: number;
  /** Outcomes written. */
  committed: number;
  /** Outcomes another processor wrote first (harmless: that one's step counts). */
  lostRaces: number;
}

/** Default tokens read per query. */
export const DEFAULT_PROCESSOR_BATCH_SIZE = 200;

/**
 * One processor pass: every processable token is stepped once (one node at most). Safe with several processors
 * at once: each outcome is fenced on the token's version, so a token moves once however many step it.
 */
export interface ProcessorPassOptions {
  /** Tokens read per query. */
  batchSize?: number;
  /**
   * Tokens stepped at once. Steps of different tokens are independent (each is fenced on its own version), so
   * on a database where every statement is a slow round trip (the Data API) several in flight hide the latency.
   */
  concurrency?: number;
}

export async function runProcessorPass(
  store: ProcessorStore,
  engine: WorkflowEngine,
  options: ProcessorPassOptions = {},
): Promise<ProcessorPassResult> {
  const batchSize = options.batchSize ?? DEFAULT_PROCESSOR_BATCH_SIZE;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const result: ProcessorPassResult = { stepped: 0, committed: 0, lostRaces: 0 };
  let afterId = 0;
  for (;;) {
    const tokens = await store.listProcessableTokens(afterId, batchSize);
    if (tokens.length === 0) break;
    await store.prefetch(tokens);
    try {
      let next = 0;
      const worker = async () => {
        while (next < tokens.length) {
          const token = tokens[next++]!;
          result.stepped++;
          const outcome = await engine.step(token);
          if (!outcome) continue;
          if (await store.commit(outcome)) result.committed++;
          else result.lostRaces++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, tokens.length) }, worker));
    } finally {
      store.clearPrefetch();
    }
    afterId = tokens[tokens.length - 1]!.id;
    if (tokens.length < batchSize) break;
  }
  await store.archiveOrphanedExecutions();
  return result;
}
