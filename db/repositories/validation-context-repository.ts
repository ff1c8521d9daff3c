import type { Kysely } from 'kysely';
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import type { ValidationContext } from '../../core/dsl/script-validator';
import type { Clock } from '../../core/ports';
import { DEFAULT_QUEUE } from '../../core/model';
import type { Database } from '../schema';
import { parseJsonColumn } from '../column-codec';
import * as z from 'zod/mini';

/** A worker that heart-beat within this many seconds counts as live for D14. */
export const LIVE_WORKER_SECONDS = 120;

/**
 * What scripts are validated against (D14): a queue is known when a live worker serves it or the deployment
 * declares it; `wait:` ids must name existing definitions; the deployment's custom tasks are task types.
 */
export async function loadValidationContext(
  db: Kysely<Database>,
  clock: Clock,
  declaredQueues: readonly string[] = [],
  customTasks?: CustomTasks,
): Promise<ValidationContext> {
  const since = new Date(clock.now().getTime() - LIVE_WORKER_SECONDS * 1000);
  const [workers, ids] = await Promise.all([db.selectFrom('workers').select('queues').where('heartbeat_at', '>=', since).execute(), definitionIds(db)]);
  const knownQueues = new Set<string>([DEFAULT_QUEUE, ...declaredQueues]);
  for (const worker of workers) for (const queue of parseJsonColumn(z.array(z.string()), worker.queues, 'workers.queues')) knownQueues.add(queue);
  return { knownQueues, definitionExists: (id) => ids.has(id), ...(customTasks ? { customTasks } : {}) };
}

/** Ids per page: about 30 bytes each in a Data API answer, so a page stays far under its 1 MiB. */
const ID_PAGE = 10_000;

/** Every definition id, a page at a time. */
async function definitionIds(db: Kysely<Database>): Promise<Set<number>> {
  const ids = new Set<number>();
  let afterId = 0;
  for (;;) {
    const rows = await db.selectFrom('job_definitions').select('id').where('id', '>', afterId).orderBy('id').limit(ID_PAGE).execute();
    for (const row of rows) ids.add(Number(row.id));
    const last = rows[rows.length - 1];
    if (rows.length < ID_PAGE || !last) return ids;
    afterId = Number(last.id);
  }
}
