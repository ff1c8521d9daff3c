import { planLaunch } from '../../core/engine/launch-planner';
import { WorkflowEngine, type InstanceCancellation } from '../../core/engine/workflow-engine';
import {
  PREVENT_MULTI,
  TOKEN_STATUS,
  type Definition,
  type EventRecord,
  type Execution,
  type Instance,
  type LogEntry,
  type Token,
} from '../../core/model';
import type { Clock, ExecutionHistory, IdGenerator, LaunchRequest, StepOutcome, StepReader, StepWriter } from '../../core/ports';

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  constructor(private current = new Date('2026-01-05T00:00:00.000Z')) {}
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
  set(at: Date): void {
    this.current = new Date(at);
  }
}

/** Sequential ids and predictable uuids. */
export class SequentialIds implements IdGenerator {
  private next = 1;
  async nextId(): Promise<number> {
    return this.next++;
  }
  uuid(): string {
    return `uuid-${this.next++}`;
  }
}

/** The ports of the engine, in memory, with the same fencing rules as the database repositories. */
export class InMemoryStore implements StepReader, StepWriter {
  readonly definitions = new Map<number, Definition>();
  readonly instances = new Map<number, Instance>();
  readonly tokens = new Map<number, Token>();
  readonly executions = new Map<number, Execution>();
  readonly histories: ExecutionHistory[] = [];
  readonly logs: LogEntry[] = [];
  readonly events: EventRecord[] = [];

  constructor(
    readonly clock: Clock,
    readonly ids: IdGenerator,
  ) {}

  async findExecutionByToken(tokenId: number): Promise<Execution | undefined> {
    return [...this.executions.values()].find((e) => e.tokenId === tokenId);
  }
  async findInstance(instanceId: number): Promise<Instance | undefined> {
    return this.instances.get(instanceId);
  }
  async findDefinition(definitionId: number): Promise<Definition | undefined> {
    return this.definitions.get(definitionId);
  }
  async findToken(tokenId: number): Promise<Token | undefined> {
    return this.tokens.get(tokenId);
  }
  async findTokens(tokenIds: readonly number[]): Promise<Token[]> {
    return tokenIds.flatMap((id) => this.tokens.get(id) ?? []);
  }
  async findTokensByInstance(instanceId: number): Promise<Token[]> {
    return [...this.tokens.values()].filter((t) => t.instanceId === instanceId);
  }
  async findExecutionsByInstance(instanceId: number): Promise<Execution[]> {
    return [...this.executions.values()].filter((e) => e.instanceId === instanceId);
  }
  async findFinishedInstanceCreatedBetween(definitionId: number, from: Date, to: Date): Promise<Instance | undefined> {
    return [...this.instances.values()].find(
      (i) => i.definitionId === definitionId && i.finishedAt !== null && i.createdAt >= from && i.createdAt <= to,
    );
  }

  async commit(outcome: StepOutcome): Promise<boolean> {
    const current = this.tokens.get(outcome.tokenId);
    if (!current || current.version !== outcome.expectedVersion) return false;
    if (outcome.token) this.tokens.set(outcome.token.id, structuredClone(outcome.token));
    else this.tokens.delete(outcome.tokenId);
    for (const token of outcome.newTokens) this.tokens.set(token.id, structuredClone(token));
    if (outcome.instancePatch) this.patchInstance(outcome.instanceId, outcome.instancePatch);
    if (outcome.deleteInstanceTokens) this.endInstance(outcome.instanceId, 'the instance ended');
    if (outcome.newExecution) this.executions.set(outcome.newExecution.id, structuredClone(outcome.newExecution));
    if (outcome.archivedExecution) {
      this.executions.delete(outcome.archivedExecution.executionId);
      this.histories.push(outcome.archivedExecution);
    }
    for (const kill of outcome.kills) this.requestKill(kill.executionId);
    for (const launch of outcome.launches) await this.launch(launch);
    this.logs.push(...outcome.logs);
    this.events.push(...outcome.events);
    return true;
  }

  /** Applies a cancel if the instance is still open; false otherwise. */
  async cancel(cancellation: InstanceCancellation): Promise<boolean> {
    const instance = this.instances.get(cancellation.instanceId);
    if (!instance || instance.finishedAt || instance.canceledAt) return false;
    instance.canceledAt = cancellation.canceledAt;
    this.endInstance(instance.id, 'canceled');
    for (const kill of cancellation.kills) this.requestKill(kill.executionId);
    this.logs.push(...cancellation.logs);
    this.events.push(...cancellation.events);
    return true;
  }

  /** Launches with prevent_multi applied against the definition's current tokens. */
  async launch(request: LaunchRequest): Promise<Instance> {
    const definition = this.definitions.get(request.definitionId);
    if (!definition) throw new Error(`no definition ${request.definitionId}`);
    const statuses = [...this.tokens.values()].filter((t) => t.definitionId === definition.id).map((t) => t.status);
    const plan = await planLaunch({ request, definition, existingTokenStatuses: statuses, now: this.clock.now(), ids: this.ids });
    this.instances.set(plan.instance.id, plan.instance);
    if (plan.token) this.tokens.set(plan.token.id, plan.token);
    this.logs.push(...plan.logs);
    this.events.push(...plan.events);
    return plan.instance;
  }

  private patchInstance(instanceId: number, patch: StepOutcome['instancePatch']): void {
    const instance = this.instances.get(instanceId);
    if (instance && patch) Object.assign(instance, patch);
  }

  private endInstance(instanceId: number, reason: string): void {
    for (const token of [...this.tokens.values()]) if (token.instanceId === instanceId) this.tokens.delete(token.id);
    for (const execution of [...this.executions.values()]) {
      if (execution.instanceId !== instanceId || execution.finishedAt) continue;
      if (execution.claimedAt === null) this.executions.delete(execution.id);
      else if (!execution.killRequestedAt) execution.killRequestedAt = this.clock.now();
    }
    void reason;
  }

  private requestKill(executionId: number): void {
    const execution = this.executions.get(executionId);
    if (execution && !execution.killRequestedAt) execution.killRequestedAt = this.clock.now();
  }
}

/** Builds a definition with Kuroko2's defaults. */
export function aDefinition(overrides: Partial<Definition> & Pick<Definition, 'id' | 'script'>): Definition {
  const at = new Date('2026-01-01T00:00:00.000Z');
  return {
    name: `job ${overrides.id}`,
    description: '',
    timeZone: 'UTC',
    suspended: false,
    preventMulti: PREVENT_MULTI.none,
    notifyCancellation: true,
    notifyAll: false,
    apiAllowed: false,
    slackChannel: '',
    webhookUrl: null,
    catchUpWindowMinutes: 60,
    createdAt: at,
    updatedAt: at,
    ...overrides,
  };
}

/** Engine, store, clock and ids wired together, with helpers that play the processor and the agent. */
export class EngineHarness {
  readonly clock = new FakeClock();
  readonly ids = new SequentialIds();
  readonly store = new InMemoryStore(this.clock, this.ids);
  readonly engine = new WorkflowEngine({ reader: this.store, clock: this.clock, ids: this.ids });

  define(id: number, script: string, overrides: Partial<Definition> = {}): Definition {
    const definition = aDefinition({ id, script, ...overrides });
    this.store.definitions.set(id, definition);
    return definition;
  }

  async launch(definitionId: number, extra: Partial<LaunchRequest> = {}): Promise<Instance> {
    return this.store.launch({ instanceId: await this.ids.nextId(), definitionId, launchedBy: 'test', ...extra });
  }

  /** One processor pass: every processable token steps once. Returns how many outcomes were committed. */
  async pass(): Promise<number> {
    let committed = 0;
    const tokens = [...this.store.tokens.values()].filter((t) => t.status === TOKEN_STATUS.working || t.status === TOKEN_STATUS.waiting);
    for (const token of tokens) {
      const current = this.store.tokens.get(token.id);
      if (!current) continue;
      const outcome = await this.engine.step(current);
      if (outcome && (await this.store.commit(outcome))) committed++;
    }
    return committed;
  }

  /** Finishes every unfinished execution as an agent would, with the exit status `exitFor` gives. */
  finishExecutions(exitFor: (e: Execution) => number | { signal: string } = () => 0, output = ''): Execution[] {
    const done: Execution[] = [];
    for (const execution of this.store.executions.values()) {
      if (execution.finishedAt) continue;
      const result = exitFor(execution);
      const now = this.clock.now();
      Object.assign(execution, {
        attempt: execution.attempt + 1,
        claimedAt: execution.claimedAt ?? now,
        startedAt: execution.startedAt ?? now,
        pid: execution.pid ?? 4242,
        finishedAt: now,
        exitStatus: typeof result === 'number' ? result : null,
        termSignal: typeof result === 'number' ? null : result.signal,
        outputHead: output,
      });
      done.push(execution);
    }
    return done;
  }

  /** Passes until nothing changes (at most `limit` passes), finishing executions with `exitFor` between passes. */
  async runUntilIdle(exitFor?: (e: Execution) => number | { signal: string }, limit = 200): Promise<number> {
    for (let passes = 1; passes <= limit; passes++) {
      const committed = await this.pass();
      const finished = exitFor ? this.finishExecutions(exitFor).length : 0;
      if (committed === 0 && finished === 0) return passes;
    }
    throw new Error(`still busy after ${limit} passes`);
  }

  eventTypes(instanceId?: number): string[] {
    return this.store.events.filter((e) => instanceId === undefined || e.instanceId === instanceId).map((e) => e.type);
  }

  logMessages(instanceId?: number): string[] {
    return this.store.logs.filter((l) => instanceId === undefined || l.instanceId === instanceId).map((l) => l.message);
  }

  tokensOf(instanceId: number): Token[] {
    return [...this.store.tokens.values()].filter((t) => t.instanceId === instanceId);
  }
}
