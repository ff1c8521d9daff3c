import { ScriptError } from '../errors';
import type { ScriptProblem } from '../errors';
import { DEFAULT_QUEUE } from '../model';
import type { CustomTasks } from './custom-tasks';
import type { ScriptNode } from './script-node';
import { listNodes, parseScriptRecovering } from './script-parser';
import {
  parseEnvOption,
  parseMinutesOption,
  parseParallelForkOption,
  parseQueueOption,
  parseRailsEnvOption,
  parseRetryOption,
  parseSleepOption,
  parseSubProcessOption,
  parseWaitOption,
} from './task-options';
import type { OptionResult } from './task-options';
import { isTaskType } from './task-types';
import { envProblems } from './env-names';
import { MAX_TOKENS_PER_LAUNCH, nodeOverBudget } from './token-budget';
import type { TaskType } from './task-types';

export { TASK_TYPES, isTaskType } from './task-types';
export type { TaskType } from './task-types';

/** What the validator may consult beyond the script; a check whose member is absent is skipped. */
export interface ValidationContext {
  /** Queues that a live worker serves or the deployment declares (D14); `@default` is always known. */
  readonly knownQueues?: ReadonlySet<string>;
  /** Whether a job definition with this id exists (for `wait:`). */
  readonly definitionExists?: (id: number) => boolean;
  /** The deployment's custom task types (`custom-tasks.ts`); each is checked like `execute:`. */
  readonly customTasks?: CustomTasks;
}

type NodeCheck = (node: ScriptNode, context: ValidationContext) => ScriptProblem[];

function atOption(node: ScriptNode, message: string, offset = 0): ScriptProblem {
  return { line: node.line, column: (node.optionColumn ?? node.column) + offset, message: `${node.type}: ${message}` };
}

function atType(node: ScriptNode, message: string): ScriptProblem {
  return { line: node.line, column: node.column, message: `${node.type}: ${message}` };
}

function optionProblems<T>(node: ScriptNode, result: OptionResult<T>): ScriptProblem[] {
  return result.ok ? [] : [atOption(node, result.message, result.offset)];
}

function childrenProblems(node: ScriptNode): ScriptProblem[] {
  return node.children.length > 0 ? [] : [atType(node, 'needs at least one indented child node')];
}

const none: NodeCheck = () => [];

const checkCommand: NodeCheck = (node) => (node.option === null || node.option.trim() === '' ? [atOption(node, 'a command is required')] : []);

const checkMinutes: NodeCheck = (node) => optionProblems(node, parseMinutesOption(node.option));

const checkSubProcess: NodeCheck = (node) => optionProblems(node, parseSubProcessOption(node.option));

/** Save-time checks per task type (the spec's validation column, plus D2-D4 and D14). */
const CHECKS: Record<TaskType, NodeCheck> = {
  root: none,
  sequence: none,
  noop: none,
  echo: none,
  auto_skip_error: none,
  env: (node) => {
    const env = parseEnvOption(node.option);
    if (!env.ok) return optionProblems(node, env);
    return envProblems(env.value).map((p) => atOption(node, p.message, Math.max(0, (node.option ?? '').indexOf(`${p.name}=`))));
  },
  execute: checkCommand,
  queue: (node, context) => {
    const queue = parseQueueOption(node.option);
    if (!queue.ok) return optionProblems(node, queue);
    const known = context.knownQueues;
    if (known === undefined || queue.value === DEFAULT_QUEUE || known.has(queue.value)) return [];
    return [atOption(node, `queue \`${queue.value}\` is not known: no live worker serves it and the deployment does not declare it`)];
  },
  timeout: checkMinutes,
  expected_time: checkMinutes,
  sleep: (node) => optionProblems(node, parseSleepOption(node.option)),
  fork: childrenProblems,
  parallel_fork: (node) => [...optionProblems(node, parseParallelForkOption(node.option)), ...childrenProblems(node)],
  sub_process: checkSubProcess,
  subprocess: checkSubProcess,
  wait: (node, context) => {
    const wait = parseWaitOption(node.option);
    if (!wait.ok) return optionProblems(node, wait);
    const exists = context.definitionExists;
    if (exists === undefined) return [];
    return wait.value.jobs
      .filter((job) => !exists(job.definitionId))
      .map((job) => atOption(node, `job definition ${job.definitionId} does not exist`, job.offset));
  },
  retry: (node) => [...optionProblems(node, parseRetryOption(node.option)), ...childrenProblems(node)],
  rails_env: (node) => optionProblems(node, parseRailsEnvOption(node.option)),
};

function byLocation(a: ScriptProblem, b: ScriptProblem): number {
  return a.line - b.line || a.column - b.column;
}

function checkScript(text: string, context: ValidationContext): { root: ScriptNode; problems: ScriptProblem[] } {
  const customTasks = context.customTasks;
  const { root, problems } = parseScriptRecovering(text, customTasks ? new Set(customTasks.keys()) : undefined);
  for (const node of listNodes(root)) {
    if (node === root) continue;
    if (isTaskType(node.type)) problems.push(...CHECKS[node.type](node, context));
    else if (customTasks?.has(node.type)) problems.push(...checkCommand(node, context));
    // Lines already reported as syntax errors or unknown types have no option to check.
  }
  const overBudget = nodeOverBudget(root);
  if (overBudget) {
    problems.push({
      line: Math.max(1, overBudget.line),
      column: Math.max(1, overBudget.column),
      message: `${overBudget.type === 'root' ? 'script' : overBudget.type}: an instance of this script could create more than ${MAX_TOKENS_PER_LAUNCH} tokens (forks multiply when nested); the limit is ${MAX_TOKENS_PER_LAUNCH}`,
    });
  }
  return { root, problems: problems.sort(byLocation) };
}

/**
 * Validates a script: its syntax and every node's option and shape. Returns every problem, sorted by line
 * then column; an empty list means the script may run. Never throws.
 */
export function validateScript(text: string, context: ValidationContext = {}): ScriptProblem[] {
  return checkScript(text, context).problems;
}

/** Validates a script and returns its tree, or throws a ScriptError listing every problem. */
export function assertValidScript(text: string, context: ValidationContext = {}): ScriptNode {
  const { root, problems } = checkScript(text, context);
  if (problems.length > 0) throw new ScriptError(problems);
  return root;
}
