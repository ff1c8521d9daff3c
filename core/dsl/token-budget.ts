/**
 * The token budget of one launch. Every `fork:` child and every `parallel_fork:` branch is a token (and, under an
 * `execute:`, a process), and nesting multiplies: three nested `parallel_fork: 100` would make 1,000,000 tokens from
 * one launch. The validator refuses a script whose tokens, multiplied out, pass the budget; the engine checks the
 * same budget at run time, where a `sub_process:` chain can multiply too (each token carries its fan-out, the number
 * of copies of it one launch may run at once).
 */
import type { ScriptNode } from './script-node';
import { parseParallelForkOption } from './task-options';

/** Tokens one launch may create: generous for real fan-outs (ten `parallel_fork: 100`s in a row), fatal to a typo. */
export const MAX_TOKENS_PER_LAUNCH = 1_000;
/** How deep `sub_process:` may nest (an instance launching itself would otherwise never stop). */
export const MAX_SUB_PROCESS_DEPTH = 10;

/** Tokens a node creates when it runs (not counting the token that runs it); saturates above the budget. */
function created(node: ScriptNode): number {
  const childSum = (children: readonly ScriptNode[]) => children.reduce((sum, child) => cap(sum + created(child)), 0);
  switch (node.type) {
    case 'fork':
      return node.children.reduce((sum, child) => cap(sum + 1 + created(child)), 0);
    case 'parallel_fork': {
      const size = parseParallelForkOption(node.option);
      return cap((size.ok ? size.value : 1) * (1 + childSum(node.children)));
    }
    default:
      return childSum(node.children);
  }
}

/** Keeps sums of huge trees finite: anything above the budget is simply "too many". */
function cap(n: number): number {
  return Math.min(n, MAX_TOKENS_PER_LAUNCH + 1);
}

/** Tokens an instance of this script creates at most, its root token included (MAX_TOKENS_PER_LAUNCH + 1 means "more"). */
export function countScriptTokens(root: ScriptNode): number {
  return cap(1 + created(root));
}

/**
 * The node to blame when a script passes the budget: the outermost fork whose own subtree passes it, else the fork
 * whose tokens, added to those of the forks before it, pass it. Undefined when the script is within the budget.
 */
export function nodeOverBudget(root: ScriptNode): ScriptNode | undefined {
  if (countScriptTokens(root) <= MAX_TOKENS_PER_LAUNCH) return undefined;
  let running = 1;
  let blamed: ScriptNode | undefined;
  const visit = (node: ScriptNode): void => {
    for (const child of node.children) {
      if (blamed) return;
      const isFork = child.type === 'fork' || child.type === 'parallel_fork';
      const own = created(child);
      if (isFork && (own >= MAX_TOKENS_PER_LAUNCH || running + own > MAX_TOKENS_PER_LAUNCH)) {
        blamed = child;
        return;
      }
      if (isFork) running += own;
      else visit(child);
    }
  };
  visit(root);
  return blamed ?? root;
}

/** The definition ids a script launches with `sub_process:`, in order of appearance. */
export function subProcessTargets(root: ScriptNode): number[] {
  const ids: number[] = [];
  const visit = (node: ScriptNode) => {
    if ((node.type === 'sub_process' || node.type === 'subprocess') && node.option !== null && /^\d+$/.test(node.option)) {
      const id = Number(node.option);
      if (Number.isSafeInteger(id) && id > 0 && !ids.includes(id)) ids.push(id);
    }
    node.children.forEach(visit);
  };
  visit(root);
  return ids;
}
