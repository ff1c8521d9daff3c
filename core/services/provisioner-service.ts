/**
 * Pure fleet decisions for one worker queue: how many on-demand instances to launch and which to terminate.
 *
 * Who ends an instance: an idle agent drains and shuts its own instance down (the agent's idle timeout), so the
 * provisioner never scales in by choice. It terminates only instances that are certainly useless: one whose agent
 * never registered within the boot timeout (a broken boot), and one whose every worker row is lost and holds
 * nothing (a dead agent). A suspended worker, or one holding a command, keeps its instance whatever else holds:
 * a person suspended it on purpose, and a running command must never be cut by the provisioner.
 *
 * A worker row is tied to its instance by hostname: the agent on EC2 registers with its instance id as hostname.
 */

/** EC2 instance states the provisioner sees (it lists pending and running ones only). */
export const FLEET_INSTANCE_STATE = { pending: 'pending', running: 'running' } as const;
export type FleetInstanceState = (typeof FLEET_INSTANCE_STATE)[keyof typeof FLEET_INSTANCE_STATE];

/** A worker row serving the queue. */
export interface FleetWorker {
  id: number;
  /** The EC2 instance the agent runs on (its hostname), absent for agents outside the managed fleet. */
  instanceId?: string;
  heartbeatAt: Date;
  suspended: boolean;
  draining: boolean;
  /** Unfinished executions the worker holds. */
  busySlots: number;
  slots: number;
}

/** A managed instance of the queue, pending or running. */
export interface FleetInstance {
  instanceId: string;
  state: FleetInstanceState;
  launchedAt: Date;
  /** A worker row names this instance as its hostname. */
  registered: boolean;
}

export interface FleetConfig {
  slotsPerWorker: number;
  minInstances: number;
  maxInstances: number;
  /** An unregistered instance older than this never booted properly and is replaced. */
  bootTimeoutMinutes: number;
  /** The agents' idle timeout; the provisioner only reports it (agents shut themselves down). */
  idleMinutes: number;
  /** A heartbeat older than this makes a worker lost (the monitor's default when unset). */
  workerLostMinutes?: number;
}

export interface FleetInput {
  /** Unclaimed, unfinished executions of the queue. */
  waitingExecutions: number;
  /** Claimed, unfinished executions of the queue. */
  runningExecutions: number;
  workers: readonly FleetWorker[];
  instances: readonly FleetInstance[];
  config: FleetConfig;
  now: Date;
}

export interface FleetPlan {
  launch: number;
  terminate: string[];
  /** One line per decision, for the log. */
  reasons: string[];
}

/** The monitor's default: two minutes without a heartbeat make a worker lost. */
export const DEFAULT_WORKER_LOST_MINUTES = 2;
/** How long an instance may take from launch to its agent's registration before it is replaced. */
export const DEFAULT_BOOT_TIMEOUT_MINUTES = 10;
const MS_PER_MINUTE = 60_000;

type WorkerHealth = 'live' | 'lost';

function healthOf(worker: FleetWorker, lostBefore: number): WorkerHealth {
  return worker.heartbeatAt.getTime() < lostBefore ? 'lost' : 'live';
}

/** Slots a worker can take new executions on: none when it is lost, suspended or draining. */
function freeSlots(worker: FleetWorker, health: WorkerHealth): number {
  if (health === 'lost' || worker.suspended || worker.draining) return 0;
  return Math.max(0, worker.slots - worker.busySlots);
}

/** Decides launches and terminations for one queue. */
export function planFleet(input: FleetInput): FleetPlan {
  const { config, now } = input;
  const reasons: string[] = [];
  const terminate: string[] = [];
  const lostBefore = now.getTime() - (config.workerLostMinutes ?? DEFAULT_WORKER_LOST_MINUTES) * MS_PER_MINUTE;
  const bootDeadline = config.bootTimeoutMinutes * MS_PER_MINUTE;

  const workersByInstance = new Map<string, FleetWorker[]>();
  for (const worker of input.workers) {
    if (worker.instanceId === undefined) continue;
    const list = workersByInstance.get(worker.instanceId) ?? [];
    list.push(worker);
    workersByInstance.set(worker.instanceId, list);
  }

  let booting = 0;
  for (const instance of input.instances) {
    const workers = workersByInstance.get(instance.instanceId) ?? [];
    if (!instance.registered && workers.length === 0) {
      const ageMs = now.getTime() - instance.launchedAt.getTime();
      if (ageMs >= bootDeadline) {
        terminate.push(instance.instanceId);
        reasons.push(
          `terminate ${instance.instanceId}: no agent registered on it within ${config.bootTimeoutMinutes} min of launch (or its agent has exited)`,
        );
      } else {
        booting++;
      }
      continue;
    }
    const keep = workers.some((w) => w.suspended || w.busySlots > 0 || healthOf(w, lostBefore) === 'live');
    if (!keep && workers.length > 0) {
      terminate.push(instance.instanceId);
      reasons.push(`terminate ${instance.instanceId}: its worker(s) ${workers.map((w) => w.id).join(', ')} are lost and hold nothing`);
    }
  }

  const free = input.workers.reduce((sum, w) => sum + freeSlots(w, healthOf(w, lostBefore)), 0);
  const capacity = free + booting * config.slotsPerWorker;
  const kept = input.instances.length - terminate.length;
  const room = Math.max(0, config.maxInstances - kept);

  let launch = 0;
  const shortfall = input.waitingExecutions - capacity;
  if (shortfall > 0) {
    const wanted = Math.ceil(shortfall / config.slotsPerWorker);
    launch = Math.min(wanted, room);
    reasons.push(
      `${input.waitingExecutions} waiting, ${input.runningExecutions} running; capacity ${capacity} ` +
        `(${free} free slot(s), ${booting} booting instance(s)): ${wanted} more instance(s) wanted, ${launch} launched` +
        (launch < wanted ? ` (max ${config.maxInstances} instances)` : ''),
    );
  }
  if (kept + launch < config.minInstances) {
    const topUp = Math.min(config.minInstances - kept - launch, room - launch);
    if (topUp > 0) {
      launch += topUp;
      reasons.push(`launch ${topUp} to keep the minimum of ${config.minInstances} instance(s)`);
    }
  }
  if (kept > config.maxInstances) {
    reasons.push(`${kept} instances exceed the maximum of ${config.maxInstances}; idle agents stop on their own after ${config.idleMinutes} min`);
  }
  return { launch, terminate, reasons };
}
