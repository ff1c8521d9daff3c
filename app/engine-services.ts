/**
 * The composition root: wires the engine, every store (app/stores.ts) and the services over one open database.
 * Every entry point (the local mode, `kuroko server`, each Lambda, the commands, the tests) builds its services
 * here and takes its stores from `services.stores`, so they all run the same code; the passes built over them are
 * described in app/passes.ts.
 */
import type { CustomTasks } from '../core/dsl/custom-tasks';
import { WorkflowEngine } from '../core/engine/workflow-engine';
import type { Clock, IdGenerator } from '../core/ports';
import { InstanceOperations } from '../core/services/instance-operations';
import { runProcessorPass, type ProcessorPassResult } from '../core/services/processor-service';
import { runSchedulerPass, type SchedulerPassResult } from '../core/services/scheduler-service';
import type { DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import type { LaunchRepository } from '../db/repositories/launch-repository';
import type { ScheduleRepository } from '../db/repositories/schedule-repository';
import type { StepStore } from '../db/repositories/step-store';
import { createStores, type Stores } from './stores';

export const systemClock: Clock = { now: () => new Date() };

export interface EngineServicesOptions {
  clock?: Clock;
  ids?: IdGenerator;
  /** Queues the deployment declares (D14), known even while no worker serves them. */
  declaredQueues?: readonly string[];
  /** Called when the processor has new work (a launch, a retry, a finished command). */
  onChange?: () => void;
  /** The deployment's custom task types (app/config/custom-tasks-config.ts). */
  customTasks?: CustomTasks;
  /** Tokens the processor steps at once (default: 1 on SQLite, 4 on MySQL, 16 on the Data API). */
  processorConcurrency?: number;
}

/** Steps in flight per processor: SQLite serialises writers anyway; the Data API pays tens of ms per statement. */
function defaultConcurrency(handle: DatabaseHandle): number {
  if (handle.capabilities.serialWriters) return 1;
  return handle.capabilities.costlyStatements ? DATA_API_CONCURRENCY : MYSQL_CONCURRENCY;
}

const MYSQL_CONCURRENCY = 4;
const DATA_API_CONCURRENCY = 16;

export interface EngineServices {
  handle: DatabaseHandle;
  clock: Clock;
  ids: IdGenerator;
  /** The deployment's custom task types (none when it configures none). */
  customTasks?: CustomTasks;
  /** Queues the deployment declares (D14). */
  declaredQueues: readonly string[];
  /** Every store of the database. */
  stores: Stores;
  engine: WorkflowEngine;
  steps: StepStore;
  launches: LaunchRepository;
  schedules: ScheduleRepository;
  operations: InstanceOperations;
  processorPass(): Promise<ProcessorPassResult>;
  schedulerPass(): Promise<SchedulerPassResult>;
}

/** Builds the services over an open database handle. */
export function createEngineServices(handle: DatabaseHandle, options: EngineServicesOptions = {}): EngineServices {
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? createIdGenerator(handle.db);
  const customTasks = options.customTasks;
  const declaredQueues = options.declaredQueues ?? [];
  const stores = createStores(handle, { clock, ids, declaredQueues, ...(customTasks ? { customTasks } : {}) });
  const { steps, launches, schedules } = stores;
  const engine = new WorkflowEngine({ reader: steps, clock, ids, ...(customTasks ? { customTasks } : {}) });
  const operations = new InstanceOperations({
    store: steps,
    launcher: launches,
    engine,
    ids,
    validationContext: stores.validationContext,
    ...(options.onChange ? { onChange: options.onChange } : {}),
  });
  return {
    handle,
    clock,
    ids,
    ...(customTasks ? { customTasks } : {}),
    declaredQueues,
    stores,
    engine,
    steps,
    launches,
    schedules,
    operations,
    processorPass: () => {
      const concurrency = options.processorConcurrency ?? defaultConcurrency(handle);
      // A round's steps in one transaction, except where every statement is a round trip (processor-service.ts).
      return runProcessorPass(steps, engine, { concurrency });
    },
    schedulerPass: () => runSchedulerPass(schedules, clock, ids),
  };
}
