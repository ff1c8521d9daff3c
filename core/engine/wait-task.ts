/** `wait:`: the token waits until an instance of each named definition finished within its period, or times out. */
import type { ScriptNode } from '../dsl/script-node';
import { parseWaitOption } from '../dsl/task-options';
import { EngineError } from '../errors';
import { LOG_LEVEL, TOKEN_STATUS } from '../model';
import { waitWindow } from '../schedule';
import { MS_PER_MINUTE, need, type EngineDeps, type TaskAnswer } from './engine-kit';
import type { StepBuilder } from './step-builder';

export async function waitTask(deps: EngineDeps, node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
  const ctx = b.token.context;
  if (!ctx.WAIT) {
    const option = need(parseWaitOption(node.option));
    const instance = await deps.reader.findInstance(b.token.instanceId);
    const own = await deps.reader.findDefinition(b.token.definitionId);
    if (!instance || !own) throw new EngineError(`instance ${b.token.instanceId} or its definition is gone`);
    const jobs = [];
    for (const job of option.jobs) {
      const upstream = await deps.reader.findDefinition(job.definitionId);
      if (!upstream) throw new EngineError(`Given Job Definition ID not found: ${job.definitionId}`);
      const window = waitWindow(job.period, instance.createdAt, own.timeZone);
      jobs.push({
        job_definition_id: job.definitionId,
        period: job.period,
        start_from: window.from.getTime(),
        start_to: window.to.getTime(),
        received: false,
      });
    }
    ctx.WAIT = { jobs, timeout: option.timeoutMinutes, started_at: b.now.getTime() };
    b.token.status = TOKEN_STATUS.waiting;
    b.log(LOG_LEVEL.info, b.tokenText(`Marked as 'waiting' ${node.option ?? ''}.`));
    return 'pass';
  }
  if (b.token.status !== TOKEN_STATUS.waiting) {
    b.token.status = TOKEN_STATUS.waiting;
    return 'pass';
  }
  const wait = ctx.WAIT;
  for (const job of wait.jobs) {
    if (job.received) continue;
    const found = await deps.reader.findFinishedInstanceCreatedBetween(job.job_definition_id, new Date(job.start_from), new Date(job.start_to));
    if (found) {
      job.received = true;
      b.log(LOG_LEVEL.info, b.tokenText(`A waiting job instance#${job.job_definition_id}/${found.id} is finished.`));
    }
  }
  if (wait.jobs.every((job) => job.received)) {
    delete ctx.WAIT;
    b.token.status = TOKEN_STATUS.working;
    b.log(LOG_LEVEL.info, b.tokenText('All waiting jobs are finished.'));
    return 'next';
  }
  // D11: the timeout counts from when the wait began.
  if (b.now.getTime() > wait.started_at + wait.timeout * MS_PER_MINUTE) {
    delete ctx.WAIT;
    b.token.status = TOKEN_STATUS.working;
    b.log(LOG_LEVEL.error, b.tokenText(`waiting jobs \`${node.option ?? ''}\` timeout.`));
    return 'failure';
  }
  return 'pass';
}
