/**
 * The `workers` table from the agent's side: one row per agent process (a restarted agent is a new worker),
 * heart-beaten with the pids it holds, deleted on a clean exit.
 *
 * A cleanly stopped agent deletes its row rather than marking it stopped: the monitor judges a worker lost when
 * its row exists and its heartbeat is stale, so a row that is gone can never be reported. An agent that could
 * not record every finish keeps its row on purpose, so the monitor finds those executions through it.
 */
import type { Kysely } from 'kysely';
import type { IdGenerator } from '../../core/ports';
import { fromDbBool, toJsonColumn } from '../column-codec';
import type { Database } from '../schema';

export interface WorkerRegistration {
  hostname: string;
  queues: readonly string[];
  slots: number;
  now: Date;
}

export interface WorkerHeartbeat {
  now: Date;
  /** Execution id -> pid of each live command the worker holds. */
  pids: Readonly<Record<number, number>>;
  /** Marks the worker as draining (it claims nothing new and exits once idle). */
  draining?: boolean;
}

/** What a person or the provisioner asked of the worker, read at each heartbeat. */
export interface WorkerFlags {
  /** Claim nothing new; keep running what is held. */
  suspended: boolean;
  /** Stop: claim nothing new, finish what is held, exit. */
  draining: boolean;
}

/** Registration, heartbeat and removal of worker rows. */
export class WorkerRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
  ) {}

  /** A new worker id, for register(): an agent keeps it across the attempts of one registration. */
  nextId(): Promise<number> {
    return this.ids.nextId();
  }

  /** Inserts a new worker row for this agent process (as `id` when given) and returns its id. */
  async register(registration: WorkerRegistration, id?: number): Promise<number> {
    id ??= await this.ids.nextId();
    await this.db
      .insertInto('workers')
      .values({
        id,
        hostname: registration.hostname,
        queues: toJsonColumn([...registration.queues]),
        slots: registration.slots,
        pids: toJsonColumn({}),
        heartbeat_at: registration.now,
        started_at: registration.now,
        suspended: false,
        draining: false,
        version: 0,
      })
      .execute();
    return id;
  }

  /**
   * Writes the heartbeat and the held pids and answers the worker's flags; undefined when the row is gone (someone
   * removed a worker they judged lost: the agent should register again). With `expected` (the flags
   * the agent last read) the write is conditional on them: one statement while nothing changed (a Data API call
   * less per beat, issue 18), and the flags are read only when they did.
   */
  async heartbeat(workerId: number, heartbeat: WorkerHeartbeat, expected?: WorkerFlags): Promise<WorkerFlags | undefined> {
    const write = this.db
      .updateTable('workers')
      .set({
        heartbeat_at: heartbeat.now,
        pids: toJsonColumn(heartbeat.pids),
        ...(heartbeat.draining ? { draining: true } : {}),
      })
      .where('id', '=', workerId);
    if (expected !== undefined && !heartbeat.draining) {
      const unchanged = await write.where('suspended', '=', expected.suspended).where('draining', '=', expected.draining).executeTakeFirst();
      if (Number(unchanged.numUpdatedRows) === 1) return expected;
    }
    await write.execute();
    const row = await this.db.selectFrom('workers').select(['suspended', 'draining']).where('id', '=', workerId).executeTakeFirst();
    if (row === undefined) return undefined;
    return { suspended: fromDbBool(row.suspended), draining: fromDbBool(row.draining) };
  }

  /** Whether the worker's row exists (a registration whose answer was lost may have written it). */
  async exists(workerId: number): Promise<boolean> {
    return (await this.db.selectFrom('workers').select('id').where('id', '=', workerId).executeTakeFirst()) !== undefined;
  }

  /** Removes the worker's row after a clean stop, so it is never reported as lost. */
  async deregister(workerId: number): Promise<void> {
    await this.db.deleteFrom('workers').where('id', '=', workerId).execute();
  }
}
