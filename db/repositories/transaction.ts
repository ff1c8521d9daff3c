import type { Kysely, Transaction } from 'kysely';
import type { IdGenerator } from '../../core/ports';
import type { Database } from '../schema';

/** Ids made available before every transaction on top of what the caller counted (kill signals, log lines). */
export const TRANSACTION_ID_MARGIN = 256;

/**
 * Runs `fn` in a transaction after making the ids it may hand out available in memory: a block reservation
 * inside the transaction would wait for SQLite's single connection, which the transaction itself holds.
 */
export async function withTransaction<T>(
  db: Kysely<Database>,
  ids: IdGenerator,
  idsNeeded: number,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  const count = idsNeeded + TRANSACTION_ID_MARGIN;
  const release = ids.hold ? await ids.hold(count) : void (await ids.ensureAvailable?.(count));
  try {
    return await db.transaction().execute(fn);
  } finally {
    release?.();
  }
}
