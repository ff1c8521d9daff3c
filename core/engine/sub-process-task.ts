/** `sub_process:`: launch another definition's instance once, then wait until it finished or was canceled. */
import type { ScriptNode } from '../dsl/script-node';
import { parseScript } from '../dsl/script-parser';
import { parseSubProcessOption } from '../dsl/task-options';
import { MAX_SUB_PROCESS_DEPTH, MAX_TOKENS_PER_LAUNCH, countScriptTokens } from '../dsl/token-budget';
import { EngineError } from '../errors';
import { INSTANCE_STATUS, LOG_LEVEL, instanceStatus } from '../model';
import { need, type EngineDeps, type TaskAnswer } from './engine-kit';
import type { StepBuilder } from './step-builder';

export async function subProcessTask(deps: EngineDeps, node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
  const ctx = b.token.context;
  const definitionId = need(parseSubProcessOption(node.option));
  const definition = await deps.reader.findDefinition(definitionId);
  if (!definition) throw new EngineError(`Job definition is not found for ${definitionId}.`);
  const label = (instanceId: number) => `'#${definition.id} ${definition.name}' instance#${definition.id}/${instanceId}`;
  if (ctx.sub_process_id === undefined) {
    const depth = (ctx.SUB_PROCESS_DEPTH ?? 0) + 1;
    if (depth > MAX_SUB_PROCESS_DEPTH) throw new EngineError(`sub_process: '#${definition.id} ${definition.name}' would nest sub processes deeper than ${MAX_SUB_PROCESS_DEPTH} levels.`);
    const fanOut = ctx.FAN_OUT ?? 1;
    const subRoot = parseScript(definition.script);
    if (subRoot.ok && fanOut * countScriptTokens(subRoot.root) > MAX_TOKENS_PER_LAUNCH) {
      throw new EngineError(`sub_process: ${fanOut} copies of '#${definition.id} ${definition.name}' would run more than ${MAX_TOKENS_PER_LAUNCH} tokens from one launch; the limit is ${MAX_TOKENS_PER_LAUNCH}.`);
    }
    const instanceId = await deps.ids.nextId();
    const { meta } = ctx;
    b.launches.push({
      instanceId,
      definitionId,
      subProcessDepth: depth,
      ...(fanOut > 1 ? { fanOut } : {}),
      launchedBy: `'#${meta.job_definition_id} ${meta.job_definition_name}' instance#${meta.job_definition_id}/${meta.job_instance_id}`,
    });
    ctx.sub_process_id = instanceId;
    b.log(LOG_LEVEL.info, b.tokenText(`Launched ${label(instanceId)} as a sub process.`));
    return 'pass';
  }
  const sub = await deps.reader.findInstance(ctx.sub_process_id);
  const status = sub ? instanceStatus(sub) : INSTANCE_STATUS.canceled;
  if (status === INSTANCE_STATUS.working || status === INSTANCE_STATUS.error) return 'pass';
  const subId = ctx.sub_process_id;
  // D11: forget the sub instance either way, so a retry after a cancel launches a new one.
  delete ctx.sub_process_id;
  if (status === INSTANCE_STATUS.canceled) {
    b.log(LOG_LEVEL.warn, b.tokenText(`${label(subId)} is canceled.`));
    return 'failure';
  }
  b.log(LOG_LEVEL.info, b.tokenText(`${label(subId)} is finished.`));
  return 'next';
}
