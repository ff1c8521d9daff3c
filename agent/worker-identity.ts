/**
 * Which worker row this agent is. It registers at start, and again as a new worker when a heartbeat finds its row
 * removed (judged lost while it was cut off); it remembers every id it was, because claims and status files of its
 * earlier selves are still its own.
 */
import { isDuplicateKeyError } from '../db/db-errors';
import type { WorkerRepository } from '../db/repositories/worker-repository';

export interface WorkerRegistration {
  readonly hostname: string;
  readonly queues: string[];
  readonly slots: number;
}

export class WorkerIdentity {
  #id: number | undefined;
  readonly #all: number[] = [];
  /** The id of a registration not yet known to have landed (see register). */
  #pendingId: number | undefined;
  /** The row's suspended flag as the last heartbeat read it: a suspended worker claims nothing new. */
  suspended = false;

  constructor(
    private readonly workers: WorkerRepository,
    private readonly registration: WorkerRegistration,
  ) {}

  /** The current worker row's id; undefined before the first registration. */
  get id(): number | undefined {
    return this.#id;
  }

  /** Every worker id this agent registered as. */
  get all(): readonly number[] {
    return this.#all;
  }

  owns(workerId: number | null): boolean {
    return workerId !== null && this.#all.includes(workerId);
  }

  /**
   * Inserts this agent's worker row. The id is chosen once per registration and kept until one attempt is known to
   * have written the row: when an attempt's answer is lost (the connection died, a Data API call timed out) the
   * INSERT may have committed, and a retry under a new id left that row behind, never beating, until the monitor
   * reported a worker lost that never ran anything. A retry looks for the row under the kept id first; and since a
   * Data API call that timed out may still commit after that look, a duplicate key on the kept id is that row too.
   */
  async register(now: Date): Promise<number> {
    const pending = this.#pendingId;
    let id: number;
    if (pending !== undefined && (await this.workers.exists(pending))) id = pending;
    else {
      const kept = (this.#pendingId = pending ?? (await this.workers.nextId()));
      id = await this.workers.register({ ...this.registration, now }, kept).catch((error: unknown) => {
        // Ids are handed out once: a row under the kept id is this agent's earlier attempt, landed late.
        if (pending === undefined || !isDuplicateKeyError(error)) throw error;
        return kept;
      });
    }
    this.#pendingId = undefined;
    this.#id = id;
    this.#all.push(id);
    return id;
  }
}
