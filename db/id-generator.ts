/**
 * Hi/lo ids: each process reserves a block of ids from the `id_blocks` row and hands them out from memory, so an
 * id costs ~0 statements and ids stay unique across processes and tables.
 *
 * A reservation is a compare-and-set without a transaction: read `next_id`, then
 * `UPDATE id_blocks SET next_id = :start + :n WHERE name = :seq AND next_id = :start`. Exactly one of several
 * racing processes matches the row; the others see 0 affected rows and try again. That is two statements per
 * block on every dialect (a transaction would cost four calls on the Data API) and never holds a lock.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { IdGenerator } from '../core/ports';
import { fromDbInt } from './column-codec';
import { GLOBAL_ID_SEQUENCE } from './migrations/0001-initial-schema';
import type { Database } from './schema';

export const DEFAULT_ID_BLOCK_SIZE = 100;
/** A process losing this many races in a row is starved by a bug, not by contention. */
const MAX_RESERVATION_ATTEMPTS = 50;
/** Upper bound of the random pause after a lost race, so racing processes fall out of step. */
const MAX_BACKOFF_MS = 10;

export interface IdGeneratorOptions {
  /** Ids reserved per round trip; larger blocks waste more ids when a process stops. */
  blockSize?: number;
  /** The `id_blocks` row to draw from. */
  sequence?: string;
}

/** An IdGenerator that also reports how many blocks it reserved (for statement-count benches). */
export interface BlockIdGenerator extends IdGenerator {
  reservations(): number;
}


/** Creates a hi/lo IdGenerator over the `id_blocks` table; safe for concurrent callers and processes. */
export function createIdGenerator(db: Kysely<Database>, options: IdGeneratorOptions = {}): BlockIdGenerator {
  const blockSize = options.blockSize ?? DEFAULT_ID_BLOCK_SIZE;
  const sequence = options.sequence ?? GLOBAL_ID_SEQUENCE;
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new RangeError(`invalid id block size ${blockSize}`);

  // Reserved ranges [next, end), oldest first; ids come from the first one.
  const ranges: { next: number; end: number }[] = [];
  let reservations = 0;
  // One reservation at a time: concurrent callers that find the ranges empty wait for the same refill.
  let refill: Promise<void> | null = null;

  const available = () => ranges.reduce((sum, r) => sum + (r.end - r.next), 0);
  // Ids set aside by hold() for transactions under way: what they may still take.
  let held = 0;

  async function reserve(size: number): Promise<void> {
    for (let attempt = 1; attempt <= MAX_RESERVATION_ATTEMPTS; attempt++) {
      const row = await db.selectFrom('id_blocks').select('next_id').where('name', '=', sequence).executeTakeFirst();
      if (!row) throw new Error(`id sequence "${sequence}" is missing from id_blocks: run the migrations`);
      const start = fromDbInt(row.next_id);
      const result = await db
        .updateTable('id_blocks')
        .set({ next_id: start + size })
        .where('name', '=', sequence)
        .where('next_id', '=', start)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) {
        ranges.push({ next: start, end: start + size });
        reservations++;
        return;
      }
      await sleep(Math.random() * MAX_BACKOFF_MS);
    }
    throw new Error(`could not reserve an id block from "${sequence}" after ${MAX_RESERVATION_ATTEMPTS} attempts`);
  }

  async function ensure(count: number, aside = 0): Promise<void> {
    while (available() - aside < count) {
      const missing = count - (available() - aside);
      refill ??= reserve(Math.max(blockSize, missing)).finally(() => {
        refill = null;
      });
      await refill;
    }
  }

  return {
    async nextId(): Promise<number> {
      // Take synchronously after the check: callers woken by the same refill may drain it before this one runs.
      for (;;) {
        const range = ranges[0];
        if (range) {
          const id = range.next++;
          if (range.next >= range.end) ranges.shift();
          return id;
        }
        await ensure(1);
      }
    },
    ensureAvailable: (count) => ensure(count),
    async hold(count: number): Promise<() => void> {
      // Counted while held even once taken (an over-estimate: a later hold may refill early, never inside).
      await ensure(count, held);
      held += count;
      let released = false;
      return () => {
        if (!released) held -= count;
        released = true;
      };
    },
    uuid: () => randomUUID(),
    reservations: () => reservations,
  };
}
