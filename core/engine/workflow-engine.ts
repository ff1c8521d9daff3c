/**
 * The token engine's entry points: a step of a token, and the manual actions (retry, skip, terminate, cancel).
 * A node's task runs in run-task.ts (one file per task family); where the token goes next is token-transitions.ts.
 */
import { findNode, nextNode, nextSiblingNode, parseScript } from '../dsl/script-parser';
import type { ScriptNode } from '../dsl/script-node';
import { ConflictError, EngineError } from '../errors';
import { EVENT_TYPE, INSTANCE_STATUS, LOG_LEVEL, TOKEN_STATUS, instanceStatus, type Execution, type Instance, type Token } from '../model';
import type { KillRequest, StepOutcome } from '../ports';
import { describe, mustBuild, type EngineDeps, type TaskAnswer } from './engine-kit';
import { runTask } from './run-task';
import { StepBuilder } from './step-builder';
import { announceLongElapsedTime, critical, errorAtAfterRecovery, fail, moveTo, skipNode } from './token-transitions';

export type { EngineDeps } from './engine-kit';
export { historyOf } from './command-task';
export { DEFAULT_EXPECTED_TIME_MINUTES } from './token-transitions';

/** Parsed scripts kept per engine; scripts repeat across tokens of one definition. */
const SCRIPT_CACHE_SIZE = 500;

/** A cancel of a whole instance: written only if the instance is still open. */
export interface InstanceCancellation {
  instanceId: number;
  canceledAt: Date;
  kills: KillRequest[];
  logs: StepOutcome['logs'];
  events: StepOutcome['events'];
}

/**
 * The token engine: runs the node at a token's path once and says, as data, what changes. It reads through
 * the StepReader port and never writes; the caller commits the outcome fenced on the token's version.
 */
export class WorkflowEngine {
  private readonly scripts = new Map<string, ScriptNode>();
  private readonly customTaskNames: ReadonlySet<string>;

  constructor(private readonly deps: EngineDeps) {
    this.customTaskNames = new Set(deps.customTasks?.keys() ?? []);
  }

  /** One step of a processable token; null when nothing changed. */
  async step(token: Token): Promise<StepOutcome | null> {
    if (token.status !== TOKEN_STATUS.working && token.status !== TOKEN_STATUS.waiting) return null;
    const b = new StepBuilder(token, this.deps.clock.now(), this.deps.ids);
    try {
      const node = this.nodeAt(b.token);
      const sleeping = b.token.context.SLEEP !== undefined && b.token.context.SLEEP > b.nowSeconds;
      const answer: TaskAnswer = sleeping ? 'pass' : await runTask(this.deps, node, b);
      if (answer === 'next') await moveTo(this.deps, nextNode(node), b);
      else if (answer === 'next_sibling') await moveTo(this.deps, nextSiblingNode(node), b);
      else if (answer === 'failure') await fail(this.deps, node, b);
      await announceLongElapsedTime(this.deps, b);
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      return critical(this.deps, token, error.message);
    }
    return b.build();
  }

  /** Manual retry of a failed token: the same node runs again on the next step. */
  async retry(token: Token, by?: string): Promise<StepOutcome> {
    if (token.status !== TOKEN_STATUS.failure) {
      throw new ConflictError(`token ${token.id} is ${token.status}; only a failed token can be retried`);
    }
    const b = new StepBuilder(token, this.deps.clock.now(), this.deps.ids);
    const node = this.nodeAt(b.token);
    if (by) b.log(LOG_LEVEL.info, `Retry by ${by}.`);
    b.patchInstance({ retrying: true, ...(await errorAtAfterRecovery(this.deps, token)) });
    b.log(LOG_LEVEL.info, b.tokenText(`Retry current node: '${describe(node)}'`));
    b.token.status = TOKEN_STATUS.working;
    b.token.message = '';
    await b.event(EVENT_TYPE.retrying, b.lastLogMessage());
    return mustBuild(b);
  }

  /** Manual skip of a failed or waiting token: it moves past its node (finishing the job after the last). */
  async skip(token: Token, by?: string): Promise<StepOutcome> {
    if (token.status !== TOKEN_STATUS.failure && token.status !== TOKEN_STATUS.waiting) {
      throw new ConflictError(`token ${token.id} is ${token.status}; only a failed or waiting token can be skipped`);
    }
    const b = new StepBuilder(token, this.deps.clock.now(), this.deps.ids);
    const node = this.nodeAt(b.token);
    if (by) b.log(LOG_LEVEL.info, `Skipped by ${by}.`);
    await skipNode(this.deps, node, b);
    return mustBuild(b);
  }

  /**
   * A person's kill of one running command (the console's Terminate): TERM to its process group, KILL after the
   * grace period. The token stays where it is; the command ends as a failure the person can then retry or skip.
   */
  async terminate(token: Token, execution: Execution, by: string): Promise<StepOutcome> {
    if (execution.tokenId !== token.id || execution.finishedAt !== null) throw new ConflictError(`execution ${execution.id} is not running`);
    if (execution.pid === null) throw new ConflictError(`execution ${execution.id} has no process yet; cancel the instance instead`);
    if (execution.killRequestedAt !== null) throw new ConflictError(`execution ${execution.id} is already being terminated`);
    const b = new StepBuilder(token, this.deps.clock.now(), this.deps.ids);
    const message = `Terminated by ${by}.`;
    b.log(LOG_LEVEL.warn, b.tokenText(`${message} (pid ${execution.pid}: \`${execution.shell}\`)`));
    b.kills.push({ executionId: execution.id, reason: message });
    return mustBuild(b);
  }

  /** Cancel of a whole unfinished instance: its tokens go, its running commands are killed. */
  async cancel(instance: Instance, by: string): Promise<InstanceCancellation> {
    const status = instanceStatus(instance);
    if (status === INSTANCE_STATUS.success || status === INSTANCE_STATUS.canceled) {
      throw new ConflictError(`instance ${instance.id} already ended (${status})`);
    }
    const now = this.deps.clock.now();
    const executions = await this.deps.reader.findExecutionsByInstance(instance.id);
    const message = `This job was canceled by ${by}.`;
    return {
      instanceId: instance.id,
      canceledAt: now,
      kills: executions.filter((e) => e.finishedAt === null).map((e) => ({ executionId: e.id, reason: message })),
      logs: [{ instanceId: instance.id, level: LOG_LEVEL.warn, message, createdAt: now }],
      events: [
        {
          id: await this.deps.ids.nextId(),
          type: EVENT_TYPE.cancellation,
          instanceId: instance.id,
          definitionId: instance.definitionId,
          tokenId: null,
          message,
          createdAt: now,
        },
      ],
    };
  }

  private nodeAt(token: Token): ScriptNode {
    const root = this.parse(token.script);
    const node = findNode(root, token.path);
    if (!node) throw new EngineError(`path query('${token.path}') is invalid.`);
    return node;
  }

  private parse(script: string): ScriptNode {
    const cached = this.scripts.get(script);
    if (cached) return cached;
    const result = parseScript(script, this.customTaskNames);
    if (!result.ok) {
      throw new EngineError(result.problems.map((p) => `(line ${p.line}) ${p.message}`).join(' '));
    }
    if (this.scripts.size >= SCRIPT_CACHE_SIZE) this.scripts.clear();
    this.scripts.set(script, result.root);
    return result.root;
  }
}
