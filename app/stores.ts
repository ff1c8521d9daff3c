/**
 * Every store (repository) of one database, built in one place: the composition root (app/engine-services.ts)
 * calls this once, and the HTTP app, the passes, the entry points and the commands take their stores from it.
 * Construction is cheap (no statement runs), so a process that needs only a few pays nothing for the rest.
 */
import type { CustomTasks } from '../core/dsl/custom-tasks';
import type { ValidationContext } from '../core/dsl/script-validator';
import type { Clock, IdGenerator } from '../core/ports';
import type { DatabaseHandle } from '../db/connection';
import { ApiClientRepository } from '../db/repositories/api-client-repository';
import { DefinitionRepository } from '../db/repositories/definition-repository';
import { EventDeliveryRepository } from '../db/repositories/event-delivery-repository';
import { FleetRepository } from '../db/repositories/fleet-repository';
import { LaunchRepository } from '../db/repositories/launch-repository';
import { LeaseRepository } from '../db/repositories/lease-repository';
import { LoginLimitRepository } from '../db/repositories/login-limit-repository';
import { MonitorRepository } from '../db/repositories/monitor-repository';
import { QueryRepository } from '../db/repositories/query-repository';
import { FinishProbeRepository } from '../db/repositories/finish-probe-repository';
import { RetentionRepository } from '../db/repositories/retention-repository';
import { ScheduleRepository } from '../db/repositories/schedule-repository';
import { SleepRepository } from '../db/repositories/sleep-repository';
import { StepStore } from '../db/repositories/step-store';
import { loadValidationContext } from '../db/repositories/validation-context-repository';

export interface StoreOptions {
  clock: Clock;
  ids: IdGenerator;
  /** Queues the deployment declares (D14): script validation knows them even while no worker serves them. */
  declaredQueues?: readonly string[];
  customTasks?: CustomTasks;
}

export interface Stores {
  launches: LaunchRepository;
  steps: StepStore;
  schedules: ScheduleRepository;
  definitions: DefinitionRepository;
  apiClients: ApiClientRepository;
  queries: QueryRepository;
  loginLimits: LoginLimitRepository;
  monitor: MonitorRepository;
  sleeps: SleepRepository;
  fleet: FleetRepository;
  deliveries: EventDeliveryRepository;
  retention: RetentionRepository;
  /** The processor's single-runner lease on AWS (app/lambda/processor-lease.ts). */
  processorLease: LeaseRepository;
  /** What the server's finish watch reads (app/finish-watch.ts). */
  finishProbe: FinishProbeRepository;
  /** What script validation reads: definitions, queues, custom tasks. */
  validationContext(): Promise<ValidationContext>;
}

/** Builds every store over one open database. */
export function createStores(handle: DatabaseHandle, options: StoreOptions): Stores {
  const { db, capabilities } = handle;
  const { clock, ids } = options;
  const validationContext = () => loadValidationContext(db, clock, options.declaredQueues, options.customTasks);
  const launches = new LaunchRepository(db, ids, clock, capabilities.rowLocks);
  return {
    launches,
    steps: new StepStore(db, ids, clock, launches, {
      boundedReads: capabilities.costlyStatements,
      historiesBeside: capabilities.costlyStatements,
      batchFences: !capabilities.serialWriters,
    }),
    schedules: new ScheduleRepository(db, ids, clock, launches),
    definitions: new DefinitionRepository(db, ids, clock, { rowLocks: capabilities.rowLocks, validationContext }),
    apiClients: new ApiClientRepository(db, ids, clock),
    queries: new QueryRepository(db, clock),
    loginLimits: new LoginLimitRepository(db, clock),
    monitor: new MonitorRepository(db, ids),
    sleeps: new SleepRepository(db),
    fleet: new FleetRepository(db),
    deliveries: new EventDeliveryRepository(db),
    retention: new RetentionRepository(db),
    processorLease: new LeaseRepository(db, clock),
    finishProbe: new FinishProbeRepository(db),
    validationContext,
  };
}
