/**
 * The server's cheap look at what separate agents did (issue 18, adaptive polling): whether any command is in
 * flight, and a signature of the finished ones no processor pass has archived yet. A finished execution stays in
 * `executions` until the pass that steps its token archives it, so a new finish changes the signature.
 *
 * Every part is read through `executions_finished_idx` (migration 0009) alone: the finished rows are a short range
 * of the index (the commands waiting for their pass), and "any in flight" stops at the first NULL entry. The queued
 * and running commands are never counted: with a thousand queued, a look every few milliseconds that counted them
 * cost MariaDB more than the work it watched.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema';

export interface FinishProbe {
  /** Whether any command is queued or running. */
  inFlight: boolean;
  /** Changes when a command finishes (count and sum of the ids of finished, unarchived executions). */
  finishedSignature: string;
}

export class FinishProbeRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async probe(): Promise<FinishProbe> {
    const row = await this.db
      .selectFrom('executions')
      .select([
        sql<number | string>`count(*)`.as('finished'),
        sql<number | string | null>`sum(id)`.as('finished_ids'),
        (eb) => eb.exists(eb.selectFrom('executions as running').select('running.id').where('running.finished_at', 'is', null)).as('running'),
      ])
      .where('finished_at', 'is not', null)
      .executeTakeFirst();
    return {
      inFlight: Number(row?.running ?? 0) > 0 || row?.running === true,
      finishedSignature: `${String(row?.finished ?? 0)}/${String(row?.finished_ids ?? 0)}`,
    };
  }
}
