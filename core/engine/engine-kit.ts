/** What the engine's parts share: its dependencies, a task's answer, and the helpers every task uses. */
import type { CustomTasks } from '../dsl/custom-tasks';
import type { ScriptNode } from '../dsl/script-node';
import { EngineError } from '../errors';
import type { Clock, IdGenerator, StepOutcome, StepReader } from '../ports';
import type { StepBuilder } from './step-builder';

export interface EngineDeps {
  reader: StepReader;
  clock: Clock;
  ids: IdGenerator;
  /** The deployment's custom task types; a node of one runs its command like `execute:`. */
  customTasks?: CustomTasks;
}

/** What a task answers after running its node (Kuroko2's symbols). */
export type TaskAnswer = 'next' | 'next_sibling' | 'pass' | 'failure';

export const MS_PER_MINUTE = 60_000;

/** A node as Kuroko2's log lines name it: `type: option`. */
export function describe(node: ScriptNode): string {
  return `${node.type}: ${node.option ?? ''}`;
}

/** The parsed option, or the parser's message as an EngineError (a critical error of the token). */
export function need<T>(result: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!result.ok) throw new EngineError(result.message);
  return result.value;
}

/** The outcome of a manual action, which always changes its token. */
export function mustBuild(b: StepBuilder): StepOutcome {
  const outcome = b.build();
  if (!outcome) throw new Error('a manual action always changes its token');
  return outcome;
}
