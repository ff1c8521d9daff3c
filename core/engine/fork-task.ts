/** `fork:` and `parallel_fork:`: start child tokens once, then wait until every one of them finished. */
import type { ScriptNode } from '../dsl/script-node';
import { MAX_TOKENS_PER_LAUNCH } from '../dsl/token-budget';
import { EngineError } from '../errors';
import { LOG_LEVEL, TOKEN_STATUS, type Token } from '../model';
import type { EngineDeps, TaskAnswer } from './engine-kit';
import { cloneContext, type StepBuilder } from './step-builder';

/** Context keys that make sense only on the token that wrote them (paths differ in a fork child's script). */
const TOKEN_LOCAL_KEYS = ['fork_children_ids', 'RETRY', 'WAIT', 'sub_process_id', 'SLEEP', 'EXPECTED_TIME_NOTIFIED_AT'] as const;

/** One child token to start: its script, the variables it adds, and how the log names it. */
export interface ForkChild {
  script: string;
  env: Record<string, string>;
  label: string;
}

/** Starts `children` (each run `multiplier` times over by the launch's fan-out), or checks whether they finished. */
export async function forkTask(deps: EngineDeps, node: ScriptNode, b: StepBuilder, children: readonly ForkChild[], multiplier: number): Promise<TaskAnswer> {
  const ctx = b.token.context;
  const existing = ctx.fork_children_ids?.[node.path];
  if (!existing || existing.length === 0) {
    // The run-time half of the token budget: scripts saved before it, and sub_process chains, pass the validator.
    const fanOut = (ctx.FAN_OUT ?? 1) * multiplier;
    if ((ctx.FAN_OUT ?? 1) * children.length > MAX_TOKENS_PER_LAUNCH || fanOut > MAX_TOKENS_PER_LAUNCH) {
      throw new EngineError(`${node.type}: this launch would run more than ${MAX_TOKENS_PER_LAUNCH} tokens at once (forks and sub processes multiply); the limit is ${MAX_TOKENS_PER_LAUNCH}.`);
    }
    b.log(LOG_LEVEL.info, b.tokenText('Start to fork.'));
    const ids: number[] = [];
    for (const child of children) {
      const context = cloneContext(ctx);
      for (const key of TOKEN_LOCAL_KEYS) delete context[key];
      if (Object.keys(child.env).length > 0) context.ENV = { ...context.ENV, ...child.env };
      if (fanOut > 1) context.FAN_OUT = fanOut;
      const token: Token = {
        id: await deps.ids.nextId(),
        uuid: deps.ids.uuid(),
        instanceId: b.token.instanceId,
        definitionId: b.token.definitionId,
        parentId: b.token.id,
        script: child.script,
        path: '/',
        status: TOKEN_STATUS.working,
        message: '',
        context,
        version: 0,
        createdAt: b.now,
        updatedAt: b.now,
      };
      b.newTokens.push(token);
      ids.push(token.id);
      b.log(LOG_LEVEL.info, `(token ${token.uuid}) New token are created for ${child.label}`);
    }
    ctx.fork_children_ids = { ...ctx.fork_children_ids, [node.path]: ids };
    return 'pass';
  }
  const tokens = await deps.reader.findTokens(existing);
  const allFinished = tokens.length === existing.length && tokens.every((t) => t.status === TOKEN_STATUS.finished);
  if (!allFinished) return 'pass';
  b.log(LOG_LEVEL.info, b.tokenText('All children are finished.'));
  return 'next_sibling';
}
