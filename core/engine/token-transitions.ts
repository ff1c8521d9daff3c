/**
 * Where a token goes after its node answered: on to the next node (finishing the instance after the last), into
 * an automatic retry or a failure, past a skipped node, or, on a critical error, out with its whole instance.
 * Each writes into the step's StepBuilder; the reader only answers questions about other rows.
 */
import type { ScriptNode } from '../dsl/script-node';
import { nextNode } from '../dsl/script-parser';
import { EVENT_TYPE, LOG_LEVEL, TOKEN_STATUS, type Token } from '../model';
import type { StepOutcome } from '../ports';
import { MS_PER_MINUTE, describe, mustBuild, type EngineDeps } from './engine-kit';
import { StepBuilder } from './step-builder';

/** Minutes after launch when a token without `expected_time:` is "long running" (Kuroko2: one day). */
export const DEFAULT_EXPECTED_TIME_MINUTES = 24 * 60;
/** How often a long-running token is announced again. */
const LONG_ELAPSED_REMIND_MS = 60 * 60 * 1000;

/** Moves the token to `node`, or finishes it when there is none. */
export async function moveTo(deps: EngineDeps, node: ScriptNode | undefined, b: StepBuilder): Promise<void> {
  if (node) {
    b.token.path = node.path;
    b.log(LOG_LEVEL.info, b.tokenText(`Current node is '${node.path}'.`));
    return;
  }
  b.log(LOG_LEVEL.info, b.tokenText("Marked as 'finished'."));
  b.token.status = TOKEN_STATUS.finished;
  if (b.token.parentId !== null) return;
  const instance = await deps.reader.findInstance(b.token.instanceId);
  b.patchInstance({ finishedAt: b.now });
  b.removed = true;
  b.deleteInstanceTokens = true;
  await b.event(instance?.retrying ? EVENT_TYPE.backToNormal : EVENT_TYPE.finished, b.lastLogMessage());
}

/** A node answered failure: retry it automatically if `retry:` allows, else mark the token failed. */
export async function fail(deps: EngineDeps, node: ScriptNode, b: StepBuilder): Promise<void> {
  const ctx = b.token.context;
  const retry = ctx.RETRY?.[node.path];
  if (retry && retry.retried_count < retry.count) {
    retry.retried_count += 1;
    b.log(LOG_LEVEL.info, b.tokenText(`Retry current node: '${describe(node)}'`));
    b.log(LOG_LEVEL.info, b.tokenText(`The number of retries: ${retry.retried_count} / ${retry.count}`));
    if (retry.sleep_time > 0) {
      b.log(LOG_LEVEL.info, b.tokenText(`Sleep for ${retry.sleep_time} seconds`));
      ctx.SLEEP = b.nowSeconds + retry.sleep_time;
    }
    return;
  }
  const reason = b.lastLogMessage();
  b.log(LOG_LEVEL.error, b.tokenText('Mark as failure.'));
  b.token.status = TOKEN_STATUS.failure;
  b.patchInstance({ errorAt: b.now });
  await b.event(EVENT_TYPE.failure, reason);
  if (ctx.AUTO_SKIP_ERROR) await skipNode(deps, node, b);
}

/** Moves a failed or waiting token past its node. */
export async function skipNode(deps: EngineDeps, node: ScriptNode, b: StepBuilder): Promise<void> {
  b.patchInstance(await errorAtAfterRecovery(deps, b.token));
  b.log(LOG_LEVEL.info, b.tokenText(`Skip current node: '${describe(node)}'`));
  const skipMessage = b.lastLogMessage();
  b.token.status = TOKEN_STATUS.working;
  b.token.message = '';
  delete b.token.context.WAIT;
  await moveTo(deps, nextNode(node), b);
  await b.event(EVENT_TYPE.skipping, skipMessage);
}

/**
 * Clears the instance's error mark when this token recovers, unless another token of the instance is still
 * failed (a fork with two failed children stays in error until both recover).
 */
export async function errorAtAfterRecovery(deps: EngineDeps, token: Token): Promise<{ errorAt?: null }> {
  const instance = await deps.reader.findInstance(token.instanceId);
  if (!instance?.errorAt) return { errorAt: null };
  const others = await deps.reader.findTokensByInstance(token.instanceId);
  const otherFailed = others.some((t) => t.id !== token.id && t.status === TOKEN_STATUS.failure);
  return otherFailed ? {} : { errorAt: null };
}

/** Announces a token running longer than its `expected_time:` (or a day), again every hour. */
export async function announceLongElapsedTime(deps: EngineDeps, b: StepBuilder): Promise<void> {
  if (b.removed) return;
  const ctx = b.token.context;
  const expected = ctx.EXPECTED_TIME ?? DEFAULT_EXPECTED_TIME_MINUTES;
  const now = b.now.getTime();
  if (b.token.createdAt.getTime() + expected * MS_PER_MINUTE >= now) return;
  if (ctx.EXPECTED_TIME_NOTIFIED_AT !== undefined && ctx.EXPECTED_TIME_NOTIFIED_AT > now - LONG_ELAPSED_REMIND_MS) return;
  if (b.token.parentId !== null) {
    const parent = await deps.reader.findToken(b.token.parentId);
    const parentExpected = parent?.context.EXPECTED_TIME ?? DEFAULT_EXPECTED_TIME_MINUTES;
    if (parentExpected === expected) return;
  }
  ctx.EXPECTED_TIME_NOTIFIED_AT = now;
  b.log(LOG_LEVEL.info, b.tokenText(`The running time is longer than ${expected} minutes!`));
  await b.event(EVENT_TYPE.longElapsedTime, b.lastLogMessage());
}

/** Kuroko2's critical path: the token is marked, the instance canceled, its tokens removed, its commands killed. */
export async function critical(deps: EngineDeps, token: Token, message: string): Promise<StepOutcome> {
  const b = new StepBuilder(token, deps.clock.now(), deps.ids);
  b.token.status = TOKEN_STATUS.critical;
  b.token.message = message;
  b.log(LOG_LEVEL.error, b.tokenText(message));
  b.log(LOG_LEVEL.warn, b.tokenText('This job is canceled.'));
  b.patchInstance({ canceledAt: b.now });
  b.removed = true;
  b.deleteInstanceTokens = true;
  const executions = await deps.reader.findExecutionsByInstance(token.instanceId);
  for (const execution of executions) {
    if (execution.finishedAt === null) b.kills.push({ executionId: execution.id, reason: 'The job was canceled by a critical error.' });
  }
  await b.event(EVENT_TYPE.critical, message);
  return mustBuild(b);
}
