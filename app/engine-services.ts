/**
 * Wires the engine, its stores and the services over one open database. Every composition root (the local
 * mode, `kuroko server`, each Lambda, the tests) builds its services here, so they all run the same code.
 */
import type { CustomTasks } from '../core/dsl/custom-tasks';
import { WorkflowEngine } from '../core/engine/workflow-engine';
import type { Clock, IdGenerator } from '../core/ports';
import { InstanceOperations } from '../core/services/instance-operations';
import { runProcessorPass, type ProcessorPassResult } from '../core/services/processor-service';
import { runSchedulerPass, type SchedulerPassResult } from '../core/services/scheduler-service';
import type { DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { LaunchRepository } from '../db/repositories/launch-repository';
import { ScheduleRepository } from '../db/repositories/schedule-repository';
import { StepStore } from '../db/repositories/step-store';
import { loadValidationContext } from '../db/repositories/validation-context-repository';

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
  const launches = new LaunchRepository(handle.db, ids, clock, handle.capabilities.rowLocks);
  const steps = new StepStore(handle.db, ids, clock, launches);
  const customTasks = options.customTasks;
  const engine = new WorkflowEngine({ reader: steps, clock, ids, ...(customTasks ? { customTasks } : {}) });
  const schedules = new ScheduleRepository(handle.db, ids, clock, launches);
  const operations = new InstanceOperations({
    store: steps,
    launcher: launches,
    engine,
    ids,
    validationContext: () => loadValidationContext(handle.db, clock, options.declaredQueues, customTasks),
    ...(options.onChange ? { onChange: options.onChange } : {}),
  });
  return {
    handle,
    clock,
    ids,
    ...(customTasks ? { customTasks } : {}),
    engine,
    steps,
    launches,
    schedules,
    operations,
    processorPass: () => runProcessorPass(steps, engine, { concurrency: options.processorConcurrency ?? defaultConcurrency(handle) }),
    schedulerPass: () => runSchedulerPass(schedules, clock, ids),
  };
}
