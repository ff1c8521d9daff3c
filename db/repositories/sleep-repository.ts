/**
 * What idle sleep is decided on first (core/services/sleep-plan.ts): the work in flight, counted in one statement
 * (every statement is a Data API round trip).
 */
import type { Kysely } from 'kysely';
import { PROCESSABLE_TOKEN_STATUSES } from '../../core/model';
import { RECENT_EVENT_MS, RECENT_WORKER_MS, type WorkInFlight } from '../../core/services/sleep-plan';
import { fromDbInt } from '../column-codec';
import { EVENT_DELIVERY_STATUS, type Database } from '../schema';

export class SleepRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async workInFlight(now: Date): Promise<WorkInFlight> {
    const recentEventsSince = new Date(now.getTime() - RECENT_EVENT_MS);
    const recentWorkersSince = new Date(now.getTime() - RECENT_WORKER_MS);
    const row = await this.db
      .selectNoFrom((eb) => [
        eb.selectFrom('tokens').select(eb.fn.countAll().as('n')).where('status', 'in', PROCESSABLE_TOKEN_STATUSES).as('tokens'),
        eb.selectFrom('executions').select(eb.fn.countAll().as('n')).where('finished_at', 'is', null).as('executions'),
        eb.selectFrom('workers').select(eb.fn.countAll().as('n')).where('heartbeat_at', '>=', recentWorkersSince).as('workers'),
        eb
          .selectFrom('event_deliveries')
          .select(eb.fn.countAll().as('n'))
          .where('status', '=', EVENT_DELIVERY_STATUS.pending)
          .as('pendingDeliveries'),
        // By events_unnotified_idx (notified, created_at): the events some channel has no delivery row for yet.
        eb
          .selectFrom('events')
          .select(eb.fn.countAll().as('n'))
          .where('notified', '=', 0)
          .where('created_at', '>=', recentEventsSince)
          .as('unsettledEvents'),
      ])
      .executeTakeFirstOrThrow();
    const count = (value: unknown) => fromDbInt((value ?? 0) as number | string | bigint);
    return {
      tokens: count(row.tokens),
      executions: count(row.executions),
      workers: count(row.workers),
      pendingDeliveries: count(row.pendingDeliveries),
      unsettledEvents: count(row.unsettledEvents),
    };
  }

}
