/**
 * Which idle workers of an on-demand queue may leave, consistently with the queue's `minInstances`: the live
 * managed workers of the queue are ordered by id, and the first `minInstances` stay. Every idle agent computes the
 * same order from the same rows, so two agents idling at once never both leave a queue below its minimum (nor
 * both stay above it), and no row has to be written to decide.
 */
import { DEFAULT_WORKER_LOST_MINUTES } from '../core/services/provisioner-service';
import type { FleetWorkerRecord } from '../db/repositories/fleet-repository';

/** EC2 instance ids, which agents on EC2 register as their hostname (managed workers). */
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const MS_PER_MINUTE = 60_000;

export interface IdleExitInput {
  readonly workerId: number;
  readonly queue: string;
  readonly minInstances: number;
  /** The worker rows (FleetRepository.listWorkers). */
  readonly workers: readonly FleetWorkerRecord[];
  readonly now: Date;
  /** A heartbeat older than this makes a worker lost (the monitor's and the provisioner's default when unset). */
  readonly workerLostMinutes?: number;
}

/** True when the idle worker `workerId` may leave without taking its queue below `minInstances` live workers. */
export function mayLeaveIdle(input: IdleExitInput): boolean {
  if (input.minInstances <= 0) return true;
  const lostBefore = input.now.getTime() - (input.workerLostMinutes ?? DEFAULT_WORKER_LOST_MINUTES) * MS_PER_MINUTE;
  const others = input.workers.filter(
    (w) =>
      w.id !== input.workerId &&
      w.queues.includes(input.queue) &&
      INSTANCE_ID.test(w.hostname) &&
      !w.draining &&
      w.heartbeatAt.getTime() >= lostBefore,
  );
  // The asking worker counts as live whatever its row says: it is running this code.
  const keepers = [input.workerId, ...others.map((w) => w.id)].sort((a, b) => a - b).slice(0, input.minInstances);
  return !keepers.includes(input.workerId);
}
