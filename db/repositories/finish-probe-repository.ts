/**
 * The server's cheap look at what separate agents did (issue 18, adaptive polling): how many commands are in
 * flight, and a signature of the finished ones no processor pass has archived yet. A finished execution stays in
 * `executions` until the pass that steps its token archives it, so a new finish changes the signature.
 *
 * One aggregate read of `executions`, which holds only the commands in flight (queued, running, or finished and
 * waiting for their pass): its cost follows the work in flight, not the history.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema';

export interface FinishProbe {
  /** Commands queued or running. */
  inFlight: number;
  /** Changes when a command finishes (count and sum of the ids of finished, unarchived executions). */
  finishedSignature: string;
}

export class FinishProbeRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async probe(): Promise<FinishProbe> {
    const row = await this.db
      .selectFrom('executions')
      .select([
        sql<number | string>`sum(case when finished_at is null then 1 else 0 end)`.as('running'),
        sql<number | string>`sum(case when finished_at is null then 0 else 1 end)`.as('finished'),
        sql<number | string>`sum(case when finished_at is null then 0 else id end)`.as('finished_ids'),
      ])
      .executeTakeFirst();
    return {
      inFlight: Number(row?.running ?? 0),
      finishedSignature: `${String(row?.finished ?? 0)}/${String(row?.finished_ids ?? 0)}`,
    };
  }
}
