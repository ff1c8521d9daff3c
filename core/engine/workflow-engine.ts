import { customTaskShell, type CustomTasks } from '../dsl/custom-tasks';
import { findNode, nextNode, nextSiblingNode, parseScript, serializeNode } from '../dsl/script-parser';
import type { ScriptNode } from '../dsl/script-node';
import {
  parseEnvOption,
  parseMinutesOption,
  parseParallelForkOption,
  parseQueueOption,
  parseRetryOption,
  parseSleepOption,
  parseSubProcessOption,
  parseAutoSkipErrorOption,
  parseWaitOption,
} from '../dsl/task-options';
import { MAX_SUB_PROCESS_DEPTH, MAX_TOKENS_PER_LAUNCH, countScriptTokens } from '../dsl/token-budget';
import { ConflictError, EngineError } from '../errors';
import {
  DEFAULT_QUEUE,
  EVENT_TYPE,
  INSTANCE_STATUS,
  LOG_LEVEL,
  TOKEN_STATUS,
  instanceStatus,
  type Execution,
  type Instance,
  type Token,
  type TokenContext,
} from '../model';
import type { Clock, ExecutionHistory, IdGenerator, KillRequest, StepOutcome, StepReader } from '../ports';
import { waitWindow } from '../schedule';
import { buildCommandEnv } from './command-env';
import { formatExecutionResult } from './execution-result';
import { StepBuilder, cloneContext } from './step-builder';

/** What a task answers after running its node (Kuroko2's symbols). */
type TaskAnswer = 'next' | 'next_sibling' | 'pass' | 'failure';

/** Minutes after launch when a token without `expected_time:` is "long running" (Kuroko2: one day). */
export const DEFAULT_EXPECTED_TIME_MINUTES = 24 * 60;
/** How often a long-running token is announced again. */
const LONG_ELAPSED_REMIND_MS = 60 * 60 * 1000;
const MS_PER_MINUTE = 60_000;
/** Parsed scripts kept per engine; scripts repeat across tokens of one definition. */
const SCRIPT_CACHE_SIZE = 500;

/** Context keys that make sense only on the token that wrote them (paths differ in a fork child's script). */
const TOKEN_LOCAL_KEYS = ['fork_children_ids', 'RETRY', 'WAIT', 'sub_process_id', 'SLEEP', 'EXPECTED_TIME_NOTIFIED_AT'] as const;

export interface EngineDeps {
  reader: StepReader;
  clock: Clock;
  ids: IdGenerator;
  /** The deployment's custom task types; a node of one runs its command like `execute:`. */
  customTasks?: CustomTasks;
}

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
      const answer: TaskAnswer = sleeping ? 'pass' : await this.runTask(node, b);
      if (answer === 'next') await this.moveTo(nextNode(node), b);
      else if (answer === 'next_sibling') await this.moveTo(nextSiblingNode(node), b);
      else if (answer === 'failure') await this.fail(node, b);
      await this.announceLongElapsedTime(b);
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      return this.critical(token, error.message);
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
    b.patchInstance({ retrying: true, ...(await this.errorAtAfterRecovery(token)) });
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
    await this.skipNode(node, b);
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

  private async runTask(node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
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
        return this.execute(node, b);
      case 'fork':
        return this.fork(node, b, node.children.map((child) => ({ script: serializeNode(child), env: {}, label: child.path })), 1);
      case 'parallel_fork': {
        const size = need(parseParallelForkOption(node.option));
        const script = `sequence:\n${node.children.map((child) => serializeNode(child, 1)).join('')}`;
        const children = Array.from({ length: size }, (_, index) => ({
          script,
          env: { KUROKO2_PARALLEL_FORK_SIZE: String(size), KUROKO2_PARALLEL_FORK_INDEX: String(index) },
          label: `${node.path} (index ${index})`,
        }));
        return this.fork(node, b, children, size);
      }
      case 'sub_process':
      case 'subprocess':
        return this.subProcess(node, b);
      case 'wait':
        return this.wait(node, b);
      case 'kuroko_runner':
        throw new EngineError('kuroko_runner runs Rails scripts of Kuroko2 itself and is not supported.');
      default: {
        const custom = this.deps.customTasks?.get(node.type);
        if (custom) return this.execute(node, b, (option) => customTaskShell(custom, option));
        throw new EngineError(`\`${node.type}\` is not registered in task repository.`);
      }
    }
  }

  /** `execute:`, and a custom task (`shellOf` builds its command from the option). */
  private async execute(node: ScriptNode, b: StepBuilder, shellOf: (option: string) => string = (option) => option): Promise<TaskAnswer> {
    const ctx = b.token.context;
    const execution = await this.deps.reader.findExecutionByToken(b.token.id);
    if (!execution) {
      const option = node.option?.trim();
      if (!option) throw new EngineError(`Option is required for ${node.type}`);
      b.newExecution = newExecution(b, await this.deps.ids.nextId(), this.deps.ids.uuid(), shellOf(option), ctx);
      return 'pass';
    }
    if (execution.finishedAt === null) {
      this.applyTimeout(execution, b);
      return 'pass';
    }
    const succeeded = execution.exitStatus === 0;
    b.log(succeeded ? LOG_LEVEL.info : LOG_LEVEL.error, b.tokenText(formatExecutionResult(execution)));
    b.archivedExecution = historyOf(execution, await this.deps.ids.nextId());
    return succeeded ? 'next' : 'failure';
  }

  /** D6: the timeout counts from the command's start and requests one kill per execution. */
  private applyTimeout(execution: Execution, b: StepBuilder): void {
    const minutes = b.token.context.TIMEOUT;
    if (!minutes || minutes <= 0 || !execution.startedAt || execution.killRequestedAt) return;
    if (b.now.getTime() - execution.startedAt.getTime() <= minutes * MS_PER_MINUTE) return;
    const reason = `Timeout occurred after ${minutes} minutes.`;
    b.kills.push({ executionId: execution.id, reason });
    b.log(LOG_LEVEL.info, b.tokenText(reason));
  }

  private async fork(
    node: ScriptNode,
    b: StepBuilder,
    children: readonly { script: string; env: Record<string, string>; label: string }[],
    multiplier: number,
  ): Promise<TaskAnswer> {
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
          id: await this.deps.ids.nextId(),
          uuid: this.deps.ids.uuid(),
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
    const tokens = await this.deps.reader.findTokens(existing);
    const allFinished = tokens.length === existing.length && tokens.every((t) => t.status === TOKEN_STATUS.finished);
    if (!allFinished) return 'pass';
    b.log(LOG_LEVEL.info, b.tokenText('All children are finished.'));
    return 'next_sibling';
  }

  private async subProcess(node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
    const ctx = b.token.context;
    const definitionId = need(parseSubProcessOption(node.option));
    const definition = await this.deps.reader.findDefinition(definitionId);
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
      const instanceId = await this.deps.ids.nextId();
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
    const sub = await this.deps.reader.findInstance(ctx.sub_process_id);
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

  private async wait(node: ScriptNode, b: StepBuilder): Promise<TaskAnswer> {
    const ctx = b.token.context;
    if (!ctx.WAIT) {
      const option = need(parseWaitOption(node.option));
      const instance = await this.deps.reader.findInstance(b.token.instanceId);
      const own = await this.deps.reader.findDefinition(b.token.definitionId);
      if (!instance || !own) throw new EngineError(`instance ${b.token.instanceId} or its definition is gone`);
      const jobs = [];
      for (const job of option.jobs) {
        const upstream = await this.deps.reader.findDefinition(job.definitionId);
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
      const found = await this.deps.reader.findFinishedInstanceCreatedBetween(
        job.job_definition_id,
        new Date(job.start_from),
        new Date(job.start_to),
      );
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

  /** Moves the token to `node`, or finishes it when there is none. */
  private async moveTo(node: ScriptNode | undefined, b: StepBuilder): Promise<void> {
    if (node) {
      b.token.path = node.path;
      b.log(LOG_LEVEL.info, b.tokenText(`Current node is '${node.path}'.`));
      return;
    }
    b.log(LOG_LEVEL.info, b.tokenText("Marked as 'finished'."));
    b.token.status = TOKEN_STATUS.finished;
    if (b.token.parentId !== null) return;
    const instance = await this.deps.reader.findInstance(b.token.instanceId);
    b.patchInstance({ finishedAt: b.now });
    b.removed = true;
    b.deleteInstanceTokens = true;
    await b.event(instance?.retrying ? EVENT_TYPE.backToNormal : EVENT_TYPE.finished, b.lastLogMessage());
  }

  /** A node answered failure: retry it automatically if `retry:` allows, else mark the token failed. */
  private async fail(node: ScriptNode, b: StepBuilder): Promise<void> {
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
    if (ctx.AUTO_SKIP_ERROR) await this.skipNode(node, b);
  }

  private async skipNode(node: ScriptNode, b: StepBuilder): Promise<void> {
    b.patchInstance(await this.errorAtAfterRecovery(b.token));
    b.log(LOG_LEVEL.info, b.tokenText(`Skip current node: '${describe(node)}'`));
    const skipMessage = b.lastLogMessage();
    b.token.status = TOKEN_STATUS.working;
    b.token.message = '';
    delete b.token.context.WAIT;
    await this.moveTo(nextNode(node), b);
    await b.event(EVENT_TYPE.skipping, skipMessage);
  }

  /**
   * Clears the instance's error mark when this token recovers, unless another token of the instance is still
   * failed (a fork with two failed children stays in error until both recover).
   */
  private async errorAtAfterRecovery(token: Token): Promise<{ errorAt?: null }> {
    const instance = await this.deps.reader.findInstance(token.instanceId);
    if (!instance?.errorAt) return { errorAt: null };
    const others = await this.deps.reader.findTokensByInstance(token.instanceId);
    const otherFailed = others.some((t) => t.id !== token.id && t.status === TOKEN_STATUS.failure);
    return otherFailed ? {} : { errorAt: null };
  }

  private async announceLongElapsedTime(b: StepBuilder): Promise<void> {
    if (b.removed) return;
    const ctx = b.token.context;
    const expected = ctx.EXPECTED_TIME ?? DEFAULT_EXPECTED_TIME_MINUTES;
    const now = b.now.getTime();
    if (b.token.createdAt.getTime() + expected * MS_PER_MINUTE >= now) return;
    if (ctx.EXPECTED_TIME_NOTIFIED_AT !== undefined && ctx.EXPECTED_TIME_NOTIFIED_AT > now - LONG_ELAPSED_REMIND_MS) return;
    if (b.token.parentId !== null) {
      const parent = await this.deps.reader.findToken(b.token.parentId);
      const parentExpected = parent?.context.EXPECTED_TIME ?? DEFAULT_EXPECTED_TIME_MINUTES;
      if (parentExpected === expected) return;
    }
    ctx.EXPECTED_TIME_NOTIFIED_AT = now;
    b.log(LOG_LEVEL.info, b.tokenText(`The running time is longer than ${expected} minutes!`));
    await b.event(EVENT_TYPE.longElapsedTime, b.lastLogMessage());
  }

  /** Kuroko2's critical path: the token is marked, the instance canceled, its tokens removed, its commands killed. */
  private async critical(token: Token, message: string): Promise<StepOutcome> {
    const b = new StepBuilder(token, this.deps.clock.now(), this.deps.ids);
    b.token.status = TOKEN_STATUS.critical;
    b.token.message = message;
    b.log(LOG_LEVEL.error, b.tokenText(message));
    b.log(LOG_LEVEL.warn, b.tokenText('This job is canceled.'));
    b.patchInstance({ canceledAt: b.now });
    b.removed = true;
    b.deleteInstanceTokens = true;
    const executions = await this.deps.reader.findExecutionsByInstance(token.instanceId);
    for (const execution of executions) {
      if (execution.finishedAt === null) b.kills.push({ executionId: execution.id, reason: 'The job was canceled by a critical error.' });
    }
    await b.event(EVENT_TYPE.critical, message);
    return mustBuild(b);
  }
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

function describe(node: ScriptNode): string {
  return `${node.type}: ${node.option ?? ''}`;
}

function need<T>(result: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!result.ok) throw new EngineError(result.message);
  return result.value;
}

function mustBuild(b: StepBuilder): StepOutcome {
  const outcome = b.build();
  if (!outcome) throw new Error('a manual action always changes its token');
  return outcome;
}
