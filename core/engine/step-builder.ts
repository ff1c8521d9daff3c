import type { EventRecord, EventType, Execution, LogEntry, LogLevel, Token, TokenContext } from '../model';
import type { ExecutionHistory, IdGenerator, InstancePatch, KillRequest, LaunchRequest, StepOutcome } from '../ports';

/** A deep copy of a token context (fork children and every step get their own). */
export function cloneContext(context: TokenContext): TokenContext {
  return structuredClone(context);
}

/**
 * Collects what one step changes. The engine mutates `token` (a private copy) and records side effects;
 * `build()` turns them into a StepOutcome, or null when the step changed nothing (a waiting `execute:`
 * costs no write at all).
 */
export class StepBuilder {
  readonly token: Token;
  removed = false;
  instancePatch: InstancePatch | undefined;
  deleteInstanceTokens = false;
  readonly newTokens: Token[] = [];
  newExecution: Execution | undefined;
  archivedExecution: ExecutionHistory | undefined;
  readonly kills: KillRequest[] = [];
  readonly launches: LaunchRequest[] = [];
  readonly logs: LogEntry[] = [];
  readonly events: EventRecord[] = [];
  private readonly originalJson: string;

  constructor(
    private readonly original: Token,
    readonly now: Date,
    private readonly ids: IdGenerator,
  ) {
    this.token = { ...original, context: cloneContext(original.context) };
    this.originalJson = JSON.stringify(this.snapshot(original));
  }

  /** Epoch seconds now (Kuroko2 stores SLEEP in seconds). */
  get nowSeconds(): number {
    return Math.floor(this.now.getTime() / 1000);
  }

  /** `(token <uuid>) <text>`, Kuroko2's prefix for token log lines. */
  tokenText(text: string): string {
    return `(token ${this.token.uuid}) ${text}`;
  }

  log(level: LogLevel, message: string): void {
    this.logs.push({ instanceId: this.token.instanceId, level, message, createdAt: this.now });
  }

  patchInstance(patch: InstancePatch): void {
    this.instancePatch = { ...this.instancePatch, ...patch };
  }

  async event(type: EventType, message: string): Promise<void> {
    this.events.push({
      id: await this.ids.nextId(),
      type,
      instanceId: this.token.instanceId,
      definitionId: this.token.definitionId,
      tokenId: this.token.id,
      message,
      createdAt: this.now,
    });
  }

  /** The last log line recorded in this step, for event bodies. */
  lastLogMessage(): string {
    return this.logs.at(-1)?.message ?? '';
  }

  build(): StepOutcome | null {
    const tokenChanged = this.removed || JSON.stringify(this.snapshot(this.token)) !== this.originalJson;
    const sideEffects =
      this.instancePatch !== undefined ||
      this.deleteInstanceTokens ||
      this.newTokens.length > 0 ||
      this.newExecution !== undefined ||
      this.archivedExecution !== undefined ||
      this.kills.length > 0 ||
      this.launches.length > 0 ||
      this.logs.length > 0 ||
      this.events.length > 0;
    if (!tokenChanged && !sideEffects) return null;
    const token = this.removed ? null : { ...this.token, version: this.original.version + 1, updatedAt: this.now };
    return {
      tokenId: this.original.id,
      expectedVersion: this.original.version,
      token,
      instanceId: this.original.instanceId,
      ...(this.instancePatch ? { instancePatch: this.instancePatch } : {}),
      ...(this.deleteInstanceTokens ? { deleteInstanceTokens: true } : {}),
      newTokens: this.newTokens,
      ...(this.newExecution ? { newExecution: this.newExecution } : {}),
      ...(this.archivedExecution ? { archivedExecution: this.archivedExecution } : {}),
      kills: this.kills,
      launches: this.launches,
      logs: this.logs,
      events: this.events,
    };
  }

  private snapshot(token: Token): unknown {
    return { path: token.path, status: token.status, message: token.message, context: token.context };
  }
}
