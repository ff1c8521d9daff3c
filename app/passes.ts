/**
 * The engine's passes described once, as data: for each, what runs, whether there is more to do right away, and
 * whom it wakes. The local runtime (cli/runtime/kuroko-runtime.ts) and the Lambda functions (app/lambda/) run the
 * same descriptions through the same loop (app/run-while-busy.ts); only the way a nudge travels differs (a call in
 * process, an asynchronous Lambda invocation on AWS).
 *
 * | pass        | more right away when          | nudges                                        |
 * |-------------|-------------------------------|-----------------------------------------------|
 * | processor   | a pass committed an outcome   | agents after a committed outcome, notifier after an event |
 * | scheduler   | never (one pass per tick)     | processor, after a launch                      |
 * | monitor     | never                         | processor after a loss, notifier after an alert |
 * | notifier    | a pass read a full batch      | nobody                                         |
 * | provisioner | never                         | nobody                                         |
 * | retention   | never (it loops over batches) | nobody                                         |
 */
import type { NotificationChannel } from '../core/notify/notification-channel';
import type { MonitorPassResult, MonitorSettings } from '../core/services/monitor-service';
import { runMonitorPass } from '../core/services/monitor-service';
import { DEFAULT_NOTIFIER_SETTINGS, runNotifierPass, type NotifierDeps, type NotifierPassResult } from '../core/services/notifier-service';
import type { ProcessorPassResult } from '../core/services/processor-service';
import { runRetentionPass, type RetentionDeps, type RetentionPassResult } from '../core/services/retention-service';
import type { SchedulerPassResult } from '../core/services/scheduler-service';
import type { EngineServices } from './engine-services';
import { runProvisionerPass, type ProvisionerPassDeps, type ProvisionerPassResult } from './lambda/lambda-provisioner-pass';
import { NUDGE_TARGET, PASS_NAME, type Pass, type PassBudget, type PassPolicy } from './run-while-busy';

/** Left for one more processor pass and the return: one pass over a busy Data API can take several seconds. */
export const PROCESSOR_SAFETY_MARGIN_MS = 15_000;
/** Left after the notifier's last claim ends: the writes of the last outcomes, the backlog count and the return. */
export const NOTIFIER_SAFETY_MARGIN_MS = 5_000;

export const PROCESSOR_POLICY: PassPolicy<ProcessorPassResult> = {
  name: PASS_NAME.processor,
  empty: { stepped: 0, committed: 0, lostRaces: 0, queued: 0, announced: 0 },
  // A chain of quick steps (a noop, then the next node) completes in one run instead of one tick per node; a pass
  // that commits nothing leaves the rest to the agents, which nudge again.
  more: (r) => r.committed > 0,
  // A committed step may have queued a command or asked for a kill (the agents); the notifier only for the events
  // written (issue 18: a step of a running job writes none, and a nudge costs the notifier a pass: 6 Data API calls).
  nudges: (r) => [...(r.committed > 0 ? [NUDGE_TARGET.agents] : []), ...(r.announced > 0 ? [NUDGE_TARGET.notifier] : [])],
  // The first pass always runs; a later one only with the margin left (a pass must never be cut by a timeout).
  canStart: (b) => b.passes === 0 || b.remainingMs() >= PROCESSOR_SAFETY_MARGIN_MS,
};

export const SCHEDULER_POLICY: PassPolicy<SchedulerPassResult> = {
  name: PASS_NAME.scheduler,
  empty: { launched: 0, missed: 0, skipped: 0, duplicates: 0 },
  more: () => false,
  // The first step of a cron launch does not wait for the processor's next tick.
  nudges: (r) => (r.launched > 0 ? [NUDGE_TARGET.processor] : []),
};

/** Alerts raised by a monitor pass, all kinds together. */
export const totalRaised = (r: MonitorPassResult): number => Object.values(r.raised).reduce((sum, n) => sum + n, 0);

export const MONITOR_POLICY: PassPolicy<MonitorPassResult> = {
  name: PASS_NAME.monitor,
  empty: { raised: { not_assigned: 0, process_absence: 0, worker_lost: 0, remind_failure: 0, memory_exceeded: 0 }, lostExecutions: 0 },
  more: () => false,
  // Executions finished as lost wait for the processor to fail their tokens; raised alerts wait for the notifier.
  nudges: (r) => [...(r.lostExecutions > 0 ? [NUDGE_TARGET.processor] : []), ...(totalRaised(r) > 0 ? [NUDGE_TARGET.notifier] : [])],
};

/**
 * How long the notifier may hold its claims with this much time left: never past the invocation's safety margin, so
 * no send outlives it and a claim left unsent comes back to the next notifier soon instead of minutes later.
 */
export const notifierClaimTimeoutMs = (remainingMs: number): number =>
  Math.min(DEFAULT_NOTIFIER_SETTINGS.claimTimeoutMs, remainingMs - NOTIFIER_SAFETY_MARGIN_MS);

export const NOTIFIER_POLICY: PassPolicy<NotifierPassResult> = {
  name: PASS_NAME.notifier,
  empty: { claimed: 0, delivered: 0, retried: 0, failed: 0, skipped: 0, deferred: 0, fullBatches: 0 },
  // Only a full batch may have more behind it (even one of skipped pairs only, which claims nothing). Events
  // announced during a pass come with the processor's nudge: going again at once after every pass that found some
  // made a busy server's notifier run back to back, a handful of events per ten statements (issue 18).
  more: (r) => r.fullBatches > 0,
  nudges: () => [],
  // A claim shorter than one send could send nothing: leave the rest to the next run.
  canStart: (b) => notifierClaimTimeoutMs(b.remainingMs()) > DEFAULT_NOTIFIER_SETTINGS.sendTimeoutMs,
};

export const RETENTION_POLICY: PassPolicy<RetentionPassResult> = {
  name: PASS_NAME.retention,
  empty: { deletedInstances: 0, batches: 0, removedOutputs: 0, stoppedEarly: false },
  more: () => false,
  nudges: () => [],
};

/** The processor pass over the services' step store. */
export const processorPass = (services: Pick<EngineServices, 'processorPass'>): Pass<ProcessorPassResult> => ({
  ...PROCESSOR_POLICY,
  run: () => services.processorPass(),
});

/** The scheduler pass over the services' schedule store. */
export const schedulerPass = (services: Pick<EngineServices, 'schedulerPass'>): Pass<SchedulerPassResult> => ({
  ...SCHEDULER_POLICY,
  run: () => services.schedulerPass(),
});

/** The monitor pass with the deployment's thresholds. */
export const monitorPass = (services: EngineServices, settings: Partial<MonitorSettings>): Pass<MonitorPassResult> => ({
  ...MONITOR_POLICY,
  run: () => runMonitorPass({ store: services.stores.monitor, clock: services.clock, ids: services.ids, settings }),
});

export interface NotifierPassOptions {
  /** The channels, or how to get them (a Lambda reads its secrets on first use). */
  channels: () => Promise<readonly NotificationChannel[]> | readonly NotificationChannel[];
  onError?: NotifierDeps['onError'];
}

/** The notifier pass over the outbox, holding its claims no longer than the budget allows. */
export const notifierPass = (services: EngineServices, options: NotifierPassOptions): Pass<NotifierPassResult> => ({
  ...NOTIFIER_POLICY,
  run: async (budget: PassBudget) => {
    const remaining = budget.remainingMs();
    return runNotifierPass({
      store: services.stores.deliveries,
      channels: await options.channels(),
      clock: services.clock,
      ids: services.ids,
      ...(Number.isFinite(remaining) ? { settings: { claimTimeoutMs: notifierClaimTimeoutMs(remaining) } } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  },
});

/** The retention pass: deletes finished and canceled instances past their retention. */
export const retentionPass = (
  services: EngineServices,
  options: Pick<RetentionDeps, 'globalDays' | 'removeOutput' | 'shouldContinue'>,
): Pass<RetentionPassResult> => ({
  ...RETENTION_POLICY,
  run: () => runRetentionPass({ store: services.stores.retention, clock: services.clock, ...options }),
});

export const PROVISIONER_POLICY: PassPolicy<ProvisionerPassResult> = {
  name: PASS_NAME.provisioner,
  empty: { queues: [], failed: [] },
  more: () => false,
  nudges: () => [],
};

/** The provisioner pass: plans and applies every configured queue's fleet. */
export const provisionerPass = (deps: ProvisionerPassDeps): Pass<ProvisionerPassResult> => ({
  ...PROVISIONER_POLICY,
  run: () => runProvisionerPass(deps),
});
