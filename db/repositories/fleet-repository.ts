/**
 * What the provisioner reads per minute: unclaimed and running executions per queue, and the worker rows with the
 * executions each holds. Four statements whatever the numbers of rows, because on the Data API every statement
 * is an HTTP round trip.
 */
import type { Kysely } from 'kysely';
import * as z from 'zod/mini';
import { fromDbBool, fromDbInt, fromDbTime, parseJsonColumn } from '../column-codec';
import type { Database } from '../schema';

/** Unfinished executions of one queue. */
export interface QueueLoad {
  /** Nobody claimed them yet. */
  waiting: number;
  /** Claimed by a worker, not finished. */
  running: number;
}

/** A worker row with the number of unfinished executions it holds. */
export interface FleetWorkerRecord {
  id: number;
  hostname: string;
  queues: string[];
  slots: number;
  heartbeatAt: Date;
  suspended: boolean;
  draining: boolean;
  busySlots: number;
}

const stringArray = z.array(z.string());

/** Reads of the provisioner. */
export class FleetRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Waiting and running execution counts for each of the queues (zero when none). */
  async queueLoad(queues: readonly string[]): Promise<Map<string, QueueLoad>> {
    const load = new Map<string, QueueLoad>(queues.map((q) => [q, { waiting: 0, running: 0 }]));
    if (queues.length === 0) return load;
    const count = (claimed: boolean) =>
      this.db
        .selectFrom('executions')
        .select(['queue', (eb) => eb.fn.countAll().as('n')])
        .where('finished_at', 'is', null)
        .where('claimed_at', claimed ? 'is not' : 'is', null)
        .where('queue', 'in', [...queues])
        .groupBy('queue')
        .execute();
    const [waiting, running] = await Promise.all([count(false), count(true)]);
    for (const row of waiting) load.get(row.queue)!.waiting = fromDbInt(row.n as number | string);
    for (const row of running) load.get(row.queue)!.running = fromDbInt(row.n as number | string);
    return load;
  }

  /** Every worker row with its held execution count. */
  async listWorkers(): Promise<FleetWorkerRecord[]> {
    const [workers, held] = await Promise.all([
      this.db.selectFrom('workers').selectAll().execute(),
      this.db
        .selectFrom('executions')
        .select(['worker_id', (eb) => eb.fn.countAll().as('n')])
        .where('worker_id', 'is not', null)
        .where('finished_at', 'is', null)
        .groupBy('worker_id')
        .execute(),
    ]);
    const busy = new Map(held.map((row) => [fromDbInt(row.worker_id as number), fromDbInt(row.n as number | string)]));
    return workers.map((w) => {
      const id = fromDbInt(w.id);
      return {
        id,
        hostname: w.hostname,
        queues: parseJsonColumn(stringArray, w.queues, 'workers.queues'),
        slots: fromDbInt(w.slots),
        heartbeatAt: fromDbTime(w.heartbeat_at),
        suspended: fromDbBool(w.suspended),
        draining: fromDbBool(w.draining),
        busySlots: busy.get(id) ?? 0,
      };
    });
  }
}
