import { assertValidScript, type ValidationContext } from '../dsl/script-validator';
import type { WorkflowEngine } from '../engine/workflow-engine';
import { envProblems } from '../dsl/env-names';
import { ConflictError, NotFoundError, ValidationError, type FieldProblem } from '../errors';
import { ROW_LIMITS, envJsonBytes, tooManyBytes, utf8Bytes } from '../row-limits';
import type { Instance, Token } from '../model';
import type { IdGenerator, LaunchRequest, StepOutcome, StepReader, StepWriter } from '../ports';
import type { InstanceCancellation } from '../engine/workflow-engine';

/** The outcome of a launch. */
export interface LaunchResult {
  instance: Instance;
  /** True when prevent_multi canceled it at birth. */
  blocked: boolean;
  /** True when an earlier launch with the same idempotency key was returned instead. */
  replayed: boolean;
}

/** Launches instances with prevent_multi applied atomically. */
export interface Launcher {
  launch(request: LaunchRequest, idempotencyKey?: string): Promise<LaunchResult>;
}

/** What instance operations read and write. */
export interface OperationsStore extends StepReader, StepWriter {
  /** Applies a cancel if the instance is still open; false when it had already ended. */
  cancel(cancellation: InstanceCancellation): Promise<boolean>;
}

export interface OperationsDeps {
  store: OperationsStore;
  launcher: Launcher;
  engine: WorkflowEngine;
  ids: IdGenerator;
  /** What an ad-hoc script is validated against (known queues, existing definitions). */
  validationContext: () => Promise<ValidationContext>;
  /** Called after every change that gives the processor work (the local mode runs a pass, AWS invokes it). */
  onChange?: () => void;
}

export interface LaunchInput {
  definitionId: number;
  launchedBy: string;
  env?: Record<string, string>;
  /** An ad-hoc script, validated before anything is written (D2). */
  script?: string;
  idempotencyKey?: string;
}

/**
 * Refuses (ValidationError, a 422) an ad-hoc script or a launch env too wide for the instance, token and execution
 * rows they are copied into (core/row-limits.ts).
 */
function assertLaunchFits(input: LaunchInput): void {
  const problems: FieldProblem[] = [];
  if (input.script !== undefined) {
    const bytes = utf8Bytes(input.script);
    if (bytes > ROW_LIMITS.scriptBytes) problems.push({ field: 'script', message: tooManyBytes(bytes, ROW_LIMITS.scriptBytes) });
  }
  if (input.env) {
    const bytes = envJsonBytes(input.env);
    if (bytes > ROW_LIMITS.launchEnvBytes) problems.push({ field: 'env', message: `${tooManyBytes(bytes, ROW_LIMITS.launchEnvBytes)} as JSON` });
  }
  if (problems.length > 0) throw new ValidationError(problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
}

/** What a person or an API client can do to instances: launch, cancel, retry and skip. */
export class InstanceOperations {
  constructor(private readonly deps: OperationsDeps) {}

  /**
   * Launches an instance; a bad ad-hoc script throws ScriptError, and an env that sets a name refused by
   * core/dsl/env-names.ts or holds NUL throws ValidationError naming them; either writes nothing.
   */
  async launch(input: LaunchInput): Promise<LaunchResult> {
    const refused = envProblems(input.env ?? {});
    if (refused.length > 0) {
      throw new ValidationError(
        `env: ${refused.map((p) => p.message).join('; ')}`,
        refused.map((p) => ({ field: `env.${p.name}`, message: p.message })),
      );
    }
    assertLaunchFits(input);
    if (input.script !== undefined) assertValidScript(input.script, await this.deps.validationContext());
    const result = await this.deps.launcher.launch(
      {
        instanceId: await this.deps.ids.nextId(),
        definitionId: input.definitionId,
        launchedBy: input.launchedBy,
        ...(input.script !== undefined ? { script: input.script } : {}),
        ...(input.env ? { env: input.env } : {}),
      },
      input.idempotencyKey,
    );
    if (!result.blocked && !result.replayed) this.deps.onChange?.();
    return result;
  }

  /** Cancels an unfinished instance, killing its running commands; ConflictError when it already ended. */
  async cancel(instanceId: number, by: string): Promise<Instance> {
    const instance = await this.getInstance(instanceId);
    const cancellation = await this.deps.engine.cancel(instance, by);
    if (!(await this.deps.store.cancel(cancellation))) throw new ConflictError(`instance ${instanceId} already ended`);
    return this.getInstance(instanceId);
  }

  /** Runs a failed token's node again. */
  async retryToken(instanceId: number, tokenId: number, by: string): Promise<Instance> {
    const token = await this.getToken(instanceId, tokenId);
    await this.commit(await this.deps.engine.retry(token, by));
    return this.getInstance(instanceId);
  }

  /** Moves a failed or waiting token past its node. */
  async skipToken(instanceId: number, tokenId: number, by: string): Promise<Instance> {
    const token = await this.getToken(instanceId, tokenId);
    await this.commit(await this.deps.engine.skip(token, by));
    return this.getInstance(instanceId);
  }

  /** Kills one running command of an instance; its token then fails and can be retried or skipped. */
  async terminateExecution(instanceId: number, executionId: number, by: string): Promise<Instance> {
    const execution = (await this.deps.store.findExecutionsByInstance(instanceId)).find((e) => e.id === executionId);
    if (!execution) throw new NotFoundError('execution', executionId);
    const token = await this.getToken(instanceId, execution.tokenId);
    await this.commit(await this.deps.engine.terminate(token, execution, by));
    return this.getInstance(instanceId);
  }

  private async commit(outcome: StepOutcome): Promise<void> {
    if (!(await this.deps.store.commit(outcome))) {
      throw new ConflictError(`token ${outcome.tokenId} changed while the request was handled; reload and try again`);
    }
    this.deps.onChange?.();
  }

  private async getInstance(instanceId: number): Promise<Instance> {
    const instance = await this.deps.store.findInstance(instanceId);
    if (!instance) throw new NotFoundError('job instance', instanceId);
    return instance;
  }

  private async getToken(instanceId: number, tokenId: number): Promise<Token> {
    const token = await this.deps.store.findToken(tokenId);
    if (!token || token.instanceId !== instanceId) throw new NotFoundError('token', tokenId);
    return token;
  }
}
