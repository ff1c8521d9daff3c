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
  const [workers, definitions] = await Promise.all([
    db.selectFrom('workers').select('queues').where('heartbeat_at', '>=', since).execute(),
    db.selectFrom('job_definitions').select('id').execute(),
  ]);
  const knownQueues = new Set<string>([DEFAULT_QUEUE, ...declaredQueues]);
  for (const worker of workers) for (const queue of parseJsonColumn(z.array(z.string()), worker.queues, 'workers.queues')) knownQueues.add(queue);
  const ids = new Set(definitions.map((d) => Number(d.id)));
  return { knownQueues, definitionExists: (id) => ids.has(id), ...(customTasks ? { customTasks } : {}) };
}
