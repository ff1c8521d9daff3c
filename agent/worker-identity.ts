/**
 * Which worker row this agent is. It registers at start, and again as a new worker when a heartbeat finds its row
 * removed (judged lost while it was cut off); it remembers every id it was, because claims and status files of its
 * earlier selves are still its own.
 */
import type { WorkerRepository } from '../db/repositories/worker-repository';

export interface WorkerRegistration {
  readonly hostname: string;
  readonly queues: string[];
  readonly slots: number;
}

export class WorkerIdentity {
  #id: number | undefined;
  readonly #all: number[] = [];
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

  async register(now: Date): Promise<number> {
    const id = await this.workers.register({ ...this.registration, now });
    this.#id = id;
    this.#all.push(id);
    return id;
  }
}
