/**
 * The monitor: finds, from outside the workers, what would otherwise hang unnoticed (invariant 4), announces it
 * through the outbox, and moves it to a state a person can act on (D10).
 *
 * - not_assigned: an execution nobody claimed for `assignmentDelayMs`, or one claimed `noPidMs` ago that still
 *   has no pid. Announced only: a worker may still pick it up, and a person can cancel.
 * - process_absence: an execution with a pid and no finish whose worker is alive (heartbeat within
 *   `workerLostMs`) but whose heartbeat `pids` no longer lists it. The agent's contract: it lists an execution
 *   from before it reports the pid until after it has written the finish. A single pass cannot tell how long
 *   the listing has been missing, so the first pass that sees it missing records the observation (an alerts row
 *   of kind `process_absence_seen`, subject `execution:<id>:<attempt>`), and a later pass that still sees it
 *   missing `processAbsenceMs` after that raises the alert. A listing that reappears clears the observation.
 *   A worker row that is gone counts as not listing it; a `pids` value that cannot be read counts as listing
 *   everything (no alert from data we cannot read). The execution is finished as lost (finished_at, exit
 *   status null, lost_reason), fenced on its attempt and on `finished_at IS NULL`: if the agent finished it
 *   meanwhile, nothing is written and nothing is raised. The processor then fails the token.
 * - worker_lost: a worker whose heartbeat is older than `workerLostMs` (unless it was draining and holds
 *   nothing). Its unfinished executions are finished as lost the same way, one event each; a worker holding
 *   none gives one event without an instance. Raised once per (worker, last heartbeat): a worker that heart-beats
 *   again and stops again is lost again.
 * - remind_failure: an instance still in error a day (and each further day) after its error_at.
 * - memory_exceeded: an instance whose peak RSS is `memoryFactor` times and `memoryMinExcessKb` above the
 *   largest peak of the definition's other instances (Kuroko2's memory expectancy).
 *
 * Each alert is raised once per (kind, subject): the alert row, the events and the log lines commit together,
 * and a duplicate key means another monitor raised it first. Times come from one clock; worker heartbeats are
 * written by the agents' clocks, so the thresholds must exceed any clock skew between hosts.
 */
import { LOG_LEVEL, type EventRecord, type EventType, type Execution, type LogEntry } from '../model';
import {
  ALERT_KIND,
  DEFAULT_MONITOR_SETTINGS,
  KB_PER_MB,
  SECOND_MS,
  type AlertKind,
  type AlertPlan,
  type ExecutionLoss,
  type MemoryPeak,
  type MonitorDeps,
  type MonitorPassResult,
  type MonitorSettings,
  type WorkerState,
} from './monitor-types';

export * from './monitor-types';

/** The subject of an alert about one attempt of an execution. */
export function executionSubject(execution: Pick<Execution, 'id' | 'attempt'>): string {
  return `execution:${execution.id}:${execution.attempt}`;
}

/** One monitor pass over workers, executions, instances in error and memory samples. */
export async function runMonitorPass(deps: MonitorDeps): Promise<MonitorPassResult> {
  const settings = { ...DEFAULT_MONITOR_SETTINGS, ...deps.settings };
  const { store, clock } = deps;
  const now = clock.now();
  const result: MonitorPassResult = {
    raised: { not_assigned: 0, process_absence: 0, worker_lost: 0, remind_failure: 0, memory_exceeded: 0 },
    lostExecutions: 0,
  };
  const ctx: PassContext = { deps, settings, now, result };

  const workers = await store.findWorkers();
  const lostWorkerIds = await checkLostWorkers(ctx, workers);
  await checkProcessAbsence(ctx, workers, lostWorkerIds);
  await checkNotAssigned(ctx);
  await checkRemindFailure(ctx);
  await checkMemory(ctx);
  return result;
}

interface PassContext {
  deps: MonitorDeps;
  settings: MonitorSettings;
  now: Date;
  result: MonitorPassResult;
}

async function raise(ctx: PassContext, plan: AlertPlan): Promise<void> {
  const { raised, lost } = await ctx.deps.store.raiseAlert(plan);
  if (!raised) return;
  ctx.result.raised[plan.kind]++;
  ctx.result.lostExecutions += lost;
}

async function eventFor(ctx: PassContext, type: EventType, message: string, about: Partial<Pick<Execution, 'instanceId' | 'definitionId' | 'tokenId'>>): Promise<EventRecord> {
  return {
    id: await ctx.deps.ids.nextId(),
    type,
    instanceId: about.instanceId ?? null,
    definitionId: about.definitionId ?? null,
    tokenId: about.tokenId ?? null,
    message,
    createdAt: ctx.now,
  };
}

function warn(ctx: PassContext, instanceId: number, message: string): LogEntry {
  return { instanceId, level: LOG_LEVEL.warn, message, createdAt: ctx.now };
}

function plan(kind: AlertKind, subject: string, ctx: PassContext, rest: Partial<AlertPlan>): AlertPlan {
  return { kind, subject, raisedAt: ctx.now, logs: [], events: [], losses: [], fallbackEvents: [], requireLoss: false, ...rest };
}

const secondsOf = (ms: number) => Math.round(ms / SECOND_MS);

/** Raises worker_lost for stale workers and finishes their executions as lost; answers the stale worker ids. */
async function checkLostWorkers(ctx: PassContext, workers: readonly WorkerState[]): Promise<Set<number>> {
  const { store } = ctx.deps;
  const cutoff = ctx.now.getTime() - ctx.settings.workerLostMs;
  const stale = workers.filter((w) => w.heartbeatAt.getTime() < cutoff);
  const staleIds = new Set(stale.map((w) => w.id));
  if (stale.length === 0) return staleIds;
  // The last heartbeat is part of the subject: a worker that resumed after being judged lost and later stopped
  // again is lost anew, and its new executions are handled (a stale worker keeps its last heartbeat: raised once).
  const subjectOf = (w: WorkerState) => `worker:${w.id}:${w.startedAt.getTime()}:${w.heartbeatAt.getTime()}`;
  const raised = await store.findRaisedSubjects(ALERT_KIND.workerLost, stale.map(subjectOf));
  const fresh = stale.filter((w) => !raised.has(subjectOf(w)));
  const executions = fresh.length > 0 ? await store.findUnfinishedExecutionsOfWorkers(fresh.map((w) => w.id)) : [];
  for (const worker of fresh) {
    const held = executions.filter((e) => e.workerId === worker.id);
    if (worker.draining && held.length === 0) continue;
    const last = worker.heartbeatAt.toISOString();
    const summary =
      `Worker ${worker.hostname} (id ${worker.id}) stopped heart-beating: last heartbeat at ${last}, ` +
      `${secondsOf(ctx.now.getTime() - worker.heartbeatAt.getTime())} s ago.`;
    const losses: ExecutionLoss[] = [];
    for (const execution of held) {
      const message =
        `(execution ${execution.uuid}) Worker ${worker.hostname} stopped heart-beating (last heartbeat at ${last}); ` +
        `\`${execution.shell}\` is finished as lost.`;
      losses.push({
        executionId: execution.id,
        attempt: execution.attempt,
        reason: `worker lost: ${worker.hostname} (id ${worker.id}) stopped heart-beating at ${last}`,
        logs: [warn(ctx, execution.instanceId, message)],
        events: [await eventFor(ctx, ALERT_KIND.workerLost, message, execution)],
      });
    }
    const fallback = await eventFor(ctx, ALERT_KIND.workerLost, summary, {});
    await raise(ctx, plan(ALERT_KIND.workerLost, subjectOf(worker), ctx, { losses, fallbackEvents: [fallback] }));
  }
  return staleIds;
}

/** Observes executions missing from their live worker's heartbeat, and finishes long-missing ones as lost. */
async function checkProcessAbsence(ctx: PassContext, workers: readonly WorkerState[], lostWorkerIds: ReadonlySet<number>): Promise<void> {
  const { store } = ctx.deps;
  const byId = new Map(workers.map((w) => [w.id, w]));
  const missing: { execution: Execution; worker: WorkerState | undefined }[] = [];
  for (const execution of await store.findRunningExecutions()) {
    if (execution.workerId === null || lostWorkerIds.has(execution.workerId)) continue;
    const worker = byId.get(execution.workerId);
    if (worker && (worker.listedExecutionIds === undefined || worker.listedExecutionIds.has(execution.id))) continue;
    // A worker whose last heartbeat predates the claim has not had a chance to list the command yet: that is
    // not absence (a worker that dies in that window is caught as worker_lost instead).
    const claimedAt = execution.claimedAt ?? execution.startedAt;
    if (worker && claimedAt && worker.heartbeatAt.getTime() <= claimedAt.getTime()) continue;
    missing.push({ execution, worker });
  }
  const observations = await store.findAbsenceObservations();
  const missingSubjects = new Set(missing.map((m) => executionSubject(m.execution)));
  const cleared = [...observations.keys()].filter((s) => !missingSubjects.has(s));
  if (cleared.length > 0) await store.clearAbsenceObservations(cleared);

  for (const { execution, worker } of missing) {
    const subject = executionSubject(execution);
    const seenAt = observations.get(subject);
    if (!seenAt) {
      await store.recordAbsenceObservation(subject, ctx.now);
      continue;
    }
    const missingForMs = ctx.now.getTime() - seenAt.getTime();
    if (missingForMs < ctx.settings.processAbsenceMs) continue;
    const host = worker ? `${worker.hostname} (id ${worker.id})` : `worker ${execution.workerId} (no longer registered)`;
    const message =
      `(execution ${execution.uuid}) Deliver notification mail: PID ${execution.pid} is not running. ` +
      `${host} has not reported it for ${secondsOf(missingForMs)} s; \`${execution.shell}\` is finished as lost.`;
    const loss: ExecutionLoss = {
      executionId: execution.id,
      attempt: execution.attempt,
      reason: `process absent: PID ${execution.pid} is no longer reported by ${host}`,
      logs: [warn(ctx, execution.instanceId, message)],
      events: [await eventFor(ctx, ALERT_KIND.processAbsence, message, execution)],
    };
    await raise(ctx, plan(ALERT_KIND.processAbsence, subject, ctx, { losses: [loss], requireLoss: true }));
  }
}

const NOT_ASSIGNED_TEXT = 'Deliver notification mail: process is not assigned to any job-executor.';

/** Raises not_assigned for executions nobody claimed in time and claimed ones that never got a pid. */
async function checkNotAssigned(ctx: PassContext): Promise<void> {
  const { store } = ctx.deps;
  const unclaimed = await store.findUnclaimedExecutions(new Date(ctx.now.getTime() - ctx.settings.assignmentDelayMs));
  const withoutPid = await store.findClaimedWithoutPid(new Date(ctx.now.getTime() - ctx.settings.noPidMs));
  const candidates = [
    ...unclaimed.map((e) => ({
      execution: e,
      subject: `${executionSubject(e)}:unclaimed`,
      detail: `No worker of queue '${e.queue}' claimed it within ${secondsOf(ctx.settings.assignmentDelayMs)} s.`,
    })),
    ...withoutPid.map((e) => ({
      execution: e,
      subject: executionSubject(e),
      detail: `${e.hostname ?? 'A worker'} claimed it at ${e.claimedAt?.toISOString() ?? '?'} but started no process within ${secondsOf(ctx.settings.noPidMs)} s.`,
    })),
  ];
  if (candidates.length === 0) return;
  const raised = await store.findRaisedSubjects(ALERT_KIND.notAssigned, candidates.map((c) => c.subject));
  for (const { execution, subject, detail } of candidates) {
    if (raised.has(subject)) continue;
    const message = `(execution ${execution.uuid}) ${NOT_ASSIGNED_TEXT} ${detail}`;
    await raise(
      ctx,
      plan(ALERT_KIND.notAssigned, subject, ctx, {
        logs: [warn(ctx, execution.instanceId, message)],
        events: [await eventFor(ctx, ALERT_KIND.notAssigned, message, execution)],
      }),
    );
  }
}

/** How many whole reminder periods an instance has been in error at `now` (0 before its first reminder is due). */
export function reminderPeriods(errorAt: Date, now: Date, periodMs: number): number {
  return Math.floor((now.getTime() - errorAt.getTime()) / periodMs);
}

/** When the next reminder of an instance in error falls due: the monitor reminds once per elapsed period. */
export function nextReminderAt(errorAt: Date, now: Date, periodMs: number): Date {
  return new Date(errorAt.getTime() + (reminderPeriods(errorAt, now, periodMs) + 1) * periodMs);
}

/** Reminds of instances still in error, once per instance per elapsed period. */
async function checkRemindFailure(ctx: PassContext): Promise<void> {
  const { store } = ctx.deps;
  const period = ctx.settings.remindFailureAfterMs;
  const instances = await store.findInstancesInErrorSince(new Date(ctx.now.getTime() - period));
  const candidates = instances.flatMap((instance) => {
    if (!instance.errorAt) return [];
    // Only the latest period: a monitor that was down for three days sends one reminder, not three.
    const periods = reminderPeriods(instance.errorAt, ctx.now, period);
    return [{ instance, periods, subject: `instance:${instance.id}:${instance.errorAt.getTime()}:${periods}` }];
  });
  if (candidates.length === 0) return;
  const raised = await store.findRaisedSubjects(ALERT_KIND.remindFailure, candidates.map((c) => c.subject));
  for (const { instance, periods, subject } of candidates) {
    if (raised.has(subject) || !instance.errorAt) continue;
    const message =
      `Deliver notification mail: this job has been in ERROR state since ${instance.errorAt.toISOString()} ` +
      `(reminder ${periods}). Retry or skip the failed token, or cancel the instance.`;
    await raise(
      ctx,
      plan(ALERT_KIND.remindFailure, subject, ctx, {
        logs: [warn(ctx, instance.id, message)],
        events: [await eventFor(ctx, ALERT_KIND.remindFailure, message, { instanceId: instance.id, definitionId: instance.definitionId })],
      }),
    );
  }
}

/** Expected peak of an instance: the largest peak among the definition's other instances, if any. */
export function expectedPeakKb(peaks: readonly MemoryPeak[], instanceId: number, definitionId: number): number | undefined {
  let expected: number | undefined;
  for (const p of peaks) {
    if (p.definitionId !== definitionId || p.instanceId === instanceId) continue;
    expected = Math.max(expected ?? 0, p.maxRssKb);
  }
  return expected;
}

/** True when a peak is far above the expectation: both `factor` times it and `minExcessKb` more. */
export function exceedsExpectation(peakKb: number, expectedKb: number, settings: Pick<MonitorSettings, 'memoryFactor' | 'memoryMinExcessKb'>): boolean {
  return peakKb >= expectedKb * settings.memoryFactor && peakKb - expectedKb >= settings.memoryMinExcessKb;
}

/** Raises memory_exceeded for recently sampled instances far above their definition's history. */
async function checkMemory(ctx: PassContext): Promise<void> {
  const { store } = ctx.deps;
  const recent = await store.findRecentMemoryPeaks(new Date(ctx.now.getTime() - ctx.settings.memoryLookbackMs));
  if (recent.length === 0) return;
  const history = await store.findMemoryPeaksOfDefinitions([...new Set(recent.map((p) => p.definitionId))]);
  const candidates = recent.flatMap((peak) => {
    const expected = expectedPeakKb(history, peak.instanceId, peak.definitionId);
    if (expected === undefined || !exceedsExpectation(peak.maxRssKb, expected, ctx.settings)) return [];
    return [{ peak, expected, subject: `instance:${peak.instanceId}` }];
  });
  if (candidates.length === 0) return;
  const raised = await store.findRaisedSubjects(ALERT_KIND.memoryExceeded, candidates.map((c) => c.subject));
  const mb = (kb: number) => (kb / KB_PER_MB).toFixed(1);
  for (const { peak, expected, subject } of candidates) {
    if (raised.has(subject)) continue;
    const message =
      `Deliver notification mail: memory consumption ${mb(peak.maxRssKb)} MB is far above the expected ` +
      `${mb(expected)} MB (the largest of this job's other instances).`;
    await raise(
      ctx,
      plan(ALERT_KIND.memoryExceeded, subject, ctx, {
        logs: [warn(ctx, peak.instanceId, message)],
        events: [await eventFor(ctx, ALERT_KIND.memoryExceeded, message, { instanceId: peak.instanceId, definitionId: peak.definitionId })],
      }),
    );
  }
}
