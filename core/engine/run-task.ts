/**
 * Runs the task of one node and answers what the token does next. The tasks that only set the token's context are
 * here; the ones that start or watch something have their own file (command, fork, sub process, wait).
 */
import { customTaskShell } from '../dsl/custom-tasks';
import type { ScriptNode } from '../dsl/script-node';
import { serializeNode } from '../dsl/script-parser';
import {
  parseAutoSkipErrorOption,
  parseEnvOption,
  parseMinutesOption,
  parseParallelForkOption,
  parseQueueOption,
  parseRetryOption,
  parseSleepOption,
} from '../dsl/task-options';
import { EngineError } from '../errors';
import { LOG_LEVEL } from '../model';
import { executeTask } from './command-task';
import { need, type EngineDeps, type TaskAnswer } from './engine-kit';
import { forkTask } from './fork-task';
import type { StepBuilder } from './step-builder';
import { subProcessTask } from './sub-process-task';
import { waitTask } from './wait-task';

export async function runTask(deps: EngineDeps, node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
  const ctx = b.token.context;
  switch (node.type) {
    case 'root':
    case 'sequence':
    case 'noop':
      return 'next';
    case 'echo':
      b.log(LOG_LEVEL.info, b.tokenText(node.option ?? ''));
      return 'next';
    case 'env':
      ctx.ENV = { ...ctx.ENV, ...need(parseEnvOption(node.option)) };
      return 'next';
    case 'rails_env':
      if (node.option) {
        ctx.RAILS_ENV = node.option;
        ctx.ENV = { ...ctx.ENV, RAILS_ENV: node.option };
      }
      return 'next';
    case 'queue':
      ctx.QUEUE = need(parseQueueOption(node.option));
      return 'next';
    case 'timeout':
      if (node.option) ctx.TIMEOUT = need(parseMinutesOption(node.option));
      return 'next';
    case 'expected_time':
      if (node.option) ctx.EXPECTED_TIME = need(parseMinutesOption(node.option));
      return 'next';
    case 'sleep':
      ctx.SLEEP = b.nowSeconds + need(parseSleepOption(node.option));
      return 'next';
    case 'auto_skip_error':
      ctx.AUTO_SKIP_ERROR = need(parseAutoSkipErrorOption(node.option));
      return 'next';
    case 'retry': {
      const { count, sleepTime } = need(parseRetryOption(node.option));
      ctx.RETRY = { ...ctx.RETRY };
      for (const child of node.children) ctx.RETRY[child.path] = { retried_count: 0, count, sleep_time: sleepTime };
      return 'next';
    }
    case 'execute':
      return executeTask(deps, node, b);
    case 'fork':
      return forkTask(deps, node, b, node.children.map((child) => ({ script: serializeNode(child), env: {}, label: child.path })), 1);
    case 'parallel_fork': {
      const size = need(parseParallelForkOption(node.option));
      const script = `sequence:\n${node.children.map((child) => serializeNode(child, 1)).join('')}`;
      const children = Array.from({ length: size }, (_, index) => ({
        script,
        env: { KUROKO2_PARALLEL_FORK_SIZE: String(size), KUROKO2_PARALLEL_FORK_INDEX: String(index) },
        label: `${node.path} (index ${index})`,
      }));
      return forkTask(deps, node, b, children, size);
    }
    case 'sub_process':
    case 'subprocess':
      return subProcessTask(deps, node, b);
    case 'wait':
      return waitTask(deps, node, b);
    case 'kuroko_runner':
      throw new EngineError('kuroko_runner runs Rails scripts of Kuroko2 itself and is not supported.');
    default: {
      const custom = deps.customTasks?.get(node.type);
      if (custom) return executeTask(deps, node, b, (option) => customTaskShell(custom, option));
      throw new EngineError(`\`${node.type}\` is not registered in task repository.`);
    }
  }
}
