/**
 * Groups the reports (starts, or finishes) of several jobs that arrive close together into one statement, each
 * still fenced on its own attempt (issue 18: at 300 jobs/s each report was its own autocommitted UPDATE, a commit
 * each for MariaDB). Group commit, no added wait: a report sent while none of its kind is in flight leaves at the end
 * of the current turn of the event loop (with whatever else that turn reported); reports arriving while one is in
 * flight leave together when it returns. A report whose attempt lost the execution is rejected with LeaseLostError
 * alone; a failed statement rejects every report in it, and each job retries its own (fenced-writes.ts).
 */
import { LeaseLostError } from '../core/errors';
import type { ExecutionHold } from '../db/repositories/execution-queue-repository';

/** The most reports in one statement (its size; a finish carries up to the output's head and tail). */
export const MAX_REPORTS_PER_STATEMENT = 16;

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class ReportBatcher<T extends ExecutionHold> {
  #pending: Pending<T>[] = [];
  #inFlight = false;
  #scheduled = false;

  /** `write` records the reports in one statement and answers the holds that were lost. */
  constructor(private readonly write: (items: T[]) => Promise<ExecutionHold[]>) {}

  /** Resolves once the report is recorded; rejects with LeaseLostError when its attempt lost the execution. */
  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#inFlight || this.#pending.length === 0) return;
    this.#inFlight = true;
    const batch = this.#pending.splice(0, MAX_REPORTS_PER_STATEMENT);
    try {
      const lost = await this.write(batch.map((pending) => pending.item));
      const lostKeys = new Set(lost.map((hold) => `${hold.id}/${hold.attempt}`));
      for (const { item, resolve, reject } of batch) {
        if (lostKeys.has(`${item.id}/${item.attempt}`)) reject(new LeaseLostError(item.id, item.attempt));
        else resolve();
      }
    } catch (error) {
      for (const { reject } of batch) reject(error);
    } finally {
      this.#inFlight = false;
      if (this.#pending.length > 0) void this.#flush();
    }
  }
}
