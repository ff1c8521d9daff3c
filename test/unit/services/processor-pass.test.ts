import { describe, expect, it } from 'vitest';
import type { Token } from '../../../core/model';
import type { StepOutcome } from '../../../core/ports';
import { runProcessorPass, type ProcessorStore } from '../../../core/services/processor-service';
import type { WorkflowEngine } from '../../../core/engine/workflow-engine';

/** A store whose due tokens are given per pass, counting the orphan archives. */
function storeWith(duePerPass: Token[][]) {
  let pass = 0;
  let archives = 0;
  const store = {
    listDueTokens: async () => duePerPass[pass] ?? [],
    clearPrefetch: () => undefined,
    wakeWaiters: async () => undefined,
    postpone: async () => undefined,
    commitChains: async (chains: readonly unknown[]) => chains.map(() => true),
    archiveOrphanedExecutions: async () => {
      archives++;
      return 0;
    },
  } as unknown as ProcessorStore;
  return { store, next: () => pass++, archives: () => archives };
}

const engine = { step: async (token: Token) => ({ tokenId: token.id, events: [] }) as unknown as StepOutcome } as unknown as WorkflowEngine;
const token = { id: 1 } as Token;

describe('processor pass', () => {
  it('archives orphaned commands only in a pass that moved nothing, not between a step and the next (issue 18)', async () => {
    const s = storeWith([[token], []]);
    expect((await runProcessorPass(s.store, engine)).committed).toBe(1);
    expect(s.archives()).toBe(0);
    s.next();
    expect((await runProcessorPass(s.store, engine)).committed).toBe(0);
    expect(s.archives()).toBe(1);
  });
});
