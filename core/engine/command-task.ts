/** `execute:` and custom tasks: queue a command, watch its timeout, and read its result once it finished. */
import type { ScriptNode } from '../dsl/script-node';
import { EngineError } from '../errors';
import { DEFAULT_QUEUE, LOG_LEVEL, type Execution, type TokenContext } from '../model';
import type { ExecutionHistory } from '../ports';
import { buildCommandEnv } from './command-env';
import { MS_PER_MINUTE, type EngineDeps, type TaskAnswer } from './engine-kit';
import { formatExecutionResult } from './execution-result';
import type { StepBuilder } from './step-builder';

/** `execute:`, and a custom task (`shellOf` builds its command from the option). */
export async function executeTask(
  deps: EngineDeps,
  node: ScriptNode,
  b: StepBuilder,
  shellOf: (option: string) => string = (option) => option,
): Promise<TaskAnswer> {
  const ctx = b.token.context;
  const execution = await deps.reader.findExecutionByToken(b.token.id);
  if (!execution) {
    const option = node.option?.trim();
    if (!option) throw new EngineError(`Option is required for ${node.type}`);
    b.newExecution = newExecution(b, await deps.ids.nextId(), deps.ids.uuid(), shellOf(option), ctx);
    return 'pass';
  }
  if (execution.finishedAt === null) {
    applyTimeout(execution, b);
    return 'pass';
  }
  const succeeded = execution.exitStatus === 0;
  b.log(succeeded ? LOG_LEVEL.info : LOG_LEVEL.error, b.tokenText(formatExecutionResult(execution)));
  b.archivedExecution = historyOf(execution, await deps.ids.nextId());
  return succeeded ? 'next' : 'failure';
}

/** D6: the timeout counts from the command's start and requests one kill per execution. */
function applyTimeout(execution: Execution, b: StepBuilder): void {
  const minutes = b.token.context.TIMEOUT;
  if (!minutes || minutes <= 0 || !execution.startedAt || execution.killRequestedAt) return;
  if (b.now.getTime() - execution.startedAt.getTime() <= minutes * MS_PER_MINUTE) return;
  const reason = `Timeout occurred after ${minutes} minutes.`;
  b.kills.push({ executionId: execution.id, reason });
  b.log(LOG_LEVEL.info, b.tokenText(reason));
}

function newExecution(b: StepBuilder, id: number, uuid: string, shell: string, ctx: TokenContext): Execution {
  return {
    id,
    uuid,
    tokenId: b.token.id,
    instanceId: b.token.instanceId,
    definitionId: b.token.definitionId,
    queue: ctx.QUEUE ?? DEFAULT_QUEUE,
    shell,
    env: buildCommandEnv(ctx),
    createdAt: b.now,
    attempt: 0,
    workerId: null,
    hostname: null,
    leaseExpiresAt: null,
    claimedAt: null,
    pid: null,
    startedAt: null,
    finishedAt: null,
    exitStatus: null,
    termSignal: null,
    outputHead: '',
    outputTail: '',
    killRequestedAt: null,
    lostReason: null,
  };
}

/** The history row kept for a finished execution. */
export function historyOf(execution: Execution, id: number): ExecutionHistory {
  return {
    id,
    executionId: execution.id,
    instanceId: execution.instanceId,
    definitionId: execution.definitionId,
    tokenId: execution.tokenId,
    queue: execution.queue,
    shell: execution.shell,
    hostname: execution.hostname,
    workerId: execution.workerId,
    pid: execution.pid,
    startedAt: execution.startedAt,
    finishedAt: execution.finishedAt ?? execution.createdAt,
    exitStatus: execution.exitStatus,
    termSignal: execution.termSignal,
  };
}
