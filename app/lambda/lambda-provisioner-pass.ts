/**
 * One provisioner run: for each configured queue, read the waiting executions, the workers and the managed
 * instances, let the pure planFleet decide, then terminate and launch through the EC2 adapter. A failing queue
 * does not stop the others; the run fails at the end so the function's error alarm sees it.
 */
import type { Logger } from '../../core/ports';
import { KurokoError, errorMessage } from '../../core/errors';
import type { Clock } from '../../core/ports';
import {
  DEFAULT_BOOT_TIMEOUT_MINUTES,
  planFleet,
  type FleetInstance,
  type FleetPlan,
  type FleetWorker,
} from '../../core/services/provisioner-service';
import type { FleetRepository } from '../../db/repositories/fleet-repository';
import type { ManagedInstance } from '../../adapters/aws/ec2-fleet';
import type { WorkerQueueBinding } from '../config/config';

/** The EC2 side the pass needs (Ec2Fleet in AWS, a fake in tests). */
export interface FleetPort {
  list(queue: string): Promise<ManagedInstance[]>;
  launch(queue: string, count: number): Promise<string[]>;
  terminate(instanceIds: readonly string[]): Promise<void>;
}

export type PassLogger = Pick<Logger, 'info' | 'error'>;

export interface ProvisionerPassDeps {
  queues: readonly WorkerQueueBinding[];
  repository: Pick<FleetRepository, 'queueLoad' | 'listWorkers'>;
  fleet: FleetPort;
  clock: Clock;
  logger: PassLogger;
}

export interface QueueOutcome {
  queue: string;
  plan: FleetPlan;
  launched: string[];
  terminated: string[];
}

export interface ProvisionerPassResult {
  queues: QueueOutcome[];
  failed: { queue: string; error: string }[];
}

/** EC2 instance ids as agents register them (their hostname). */
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

/** Runs planFleet and applies it for every configured queue. */
export async function runProvisionerPass(deps: ProvisionerPassDeps): Promise<ProvisionerPassResult> {
  const names = deps.queues.map((q) => q.name);
  const [load, workers] = await Promise.all([deps.repository.queueLoad(names), deps.repository.listWorkers()]);
  const result: ProvisionerPassResult = { queues: [], failed: [] };
  for (const queue of deps.queues) {
    try {
      const instances = await deps.fleet.list(queue.name);
      const queueWorkers: FleetWorker[] = workers
        .filter((w) => w.queues.includes(queue.name))
        .map((w) => ({
          id: w.id,
          ...(INSTANCE_ID.test(w.hostname) ? { instanceId: w.hostname } : {}),
          heartbeatAt: w.heartbeatAt,
          suspended: w.suspended,
          draining: w.draining,
          busySlots: w.busySlots,
          slots: w.slots,
        }));
      // Registered means any worker row, of any queue, names the instance: it booted and its agent is there.
      const registeredIds = new Set(workers.map((w) => w.hostname));
      const fleetInstances: FleetInstance[] = instances.map((i) => ({ ...i, registered: registeredIds.has(i.instanceId) }));
      const queueLoad = load.get(queue.name) ?? { waiting: 0, running: 0 };
      const plan = planFleet({
        waitingExecutions: queueLoad.waiting,
        runningExecutions: queueLoad.running,
        workers: queueWorkers,
        instances: fleetInstances,
        now: deps.clock.now(),
        config: {
          slotsPerWorker: queue.slotsPerWorker,
          minInstances: queue.minInstances,
          maxInstances: queue.maxInstances,
          bootTimeoutMinutes: queue.bootTimeoutMinutes ?? DEFAULT_BOOT_TIMEOUT_MINUTES,
          idleMinutes: queue.idleMinutes,
        },
      });
      if (plan.terminate.length > 0) await deps.fleet.terminate(plan.terminate);
      const launched = plan.launch > 0 ? await deps.fleet.launch(queue.name, plan.launch) : [];
      if (plan.reasons.length > 0 || launched.length > 0) {
        deps.logger.info(`queue ${queue.name}: ${plan.reasons.join('; ')}`, { launched, terminated: plan.terminate });
      }
      result.queues.push({ queue: queue.name, plan, launched, terminated: plan.terminate });
    } catch (error) {
      const message = errorMessage(error);
      deps.logger.error(`queue ${queue.name}: provisioning failed`, { error: message, code: error instanceof KurokoError ? error.code : undefined });
      result.failed.push({ queue: queue.name, error: message });
    }
  }
  return result;
}
