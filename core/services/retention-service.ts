/**
 * Retention: finished and canceled instances (with everything recorded about them) are deleted once they are
 * older than their definition's retention period. The planning here is pure; the store deletes.
 *
 * - A definition's `retentionDays` overrides the global policy; null follows it; 0 keeps its instances forever.
 * - The global policy defaults to 90 days; 0 keeps everything forever.
 * - Only instances that ended (finished or canceled) before the cut-off go: an instance in error is kept until it
 *   is resolved (retried to success, skipped or canceled), a working instance is never touched.
 * - Deletion goes in small batches, one short transaction each, so the processor and the agents never wait long
 *   on a lock the pass holds, and every statement stays within the Data API's limits.
 *
 * Command output kept outside the database (the local log sink's files) is removed through `removeOutput`.
 * On AWS, command output in CloudWatch Logs is NOT deleted by this pass: it is left to the execution log group's
 * retention (cdk/stacks/engine-stack.ts `ExecutionLogs`, `retention: props.logRetention`, from the deploy
 * configuration's `logRetentionDays`, 30 days by default).
 */
import type { Clock } from '../ports';

/** Kuroko2's clean-up task kept 90 days too. */
export const DEFAULT_RETENTION_DAYS = 90;
/** The longest retention a definition or the policy may ask for (100 years). */
export const MAX_RETENTION_DAYS = 36_500;
/** Instances per batch: one transaction each. */
export const DEFAULT_RETENTION_BATCH_SIZE = 200;
/** The largest batch: keeps every IN list (ids of ~20 chars) well under the Data API's 64 KiB statement text. */
export const MAX_RETENTION_BATCH_SIZE = 500;

const DAY_MS = 86_400_000;

/** A definition's retention setting. */
export interface DefinitionRetention {
  definitionId: number;
  /** null: follow the global policy; 0: keep forever. */
  retentionDays: number | null;
}

/**
 * Which instances a pass may delete: those ended before `cutoff`, either of every definition that follows the
 * global policy (`definitionId` undefined; includes instances whose definition no longer exists) or of one
 * definition with its own setting.
 */
export interface RetentionRule {
  definitionId?: number;
  cutoff: Date;
}

export interface RetentionPlan {
  /** Rules to apply, the global one (if any) first. */
  rules: RetentionRule[];
  /** Definitions whose own setting differs from the global policy: the global rule skips them. */
  overriddenDefinitionIds: number[];
}

/** The cut-off `days` before `now`; undefined for 0 (keep forever). */
export function retentionCutoff(now: Date, days: number): Date | undefined {
  if (!Number.isInteger(days) || days < 0) throw new RangeError(`retention days must be a non-negative integer, got ${days}`);
  if (days === 0) return undefined;
  return new Date(now.getTime() - days * DAY_MS);
}

/** Plans a pass: one rule for the global policy and one per definition with its own setting. */
export function planRetention(now: Date, globalDays: number, definitions: readonly DefinitionRetention[]): RetentionPlan {
  const rules: RetentionRule[] = [];
  const overridden: number[] = [];
  const globalCutoff = retentionCutoff(now, globalDays);
  if (globalCutoff) rules.push({ cutoff: globalCutoff });
  for (const d of definitions) {
    if (d.retentionDays === null) continue;
    overridden.push(d.definitionId);
    const cutoff = retentionCutoff(now, d.retentionDays);
    if (cutoff) rules.push({ definitionId: d.definitionId, cutoff });
  }
  return { rules, overriddenDefinitionIds: overridden };
}

/** What one deleted batch removed. */
export interface RetentionBatchResult {
  instances: number;
  /** Ids of the executions (live rows and histories) whose output went with them. */
  executionIds: number[];
}

/** The database side of retention. */
export interface RetentionStore {
  /** Every definition with its own retention setting (retention_days not null). */
  listRetentionOverrides(): Promise<DefinitionRetention[]>;
  /**
   * Up to `limit` ids of instances the rule covers that ended (finished, or canceled without finishing) before
   * its cut-off, oldest first. The global rule leaves out instances of definitions with their own setting.
   */
  selectExpiredInstances(rule: RetentionRule, limit: number): Promise<number[]>;
  /** Deletes the instances and every row about them in one short transaction, children first. */
  deleteInstances(instanceIds: readonly number[]): Promise<RetentionBatchResult>;
}

export interface RetentionDeps {
  store: RetentionStore;
  clock: Clock;
  /** The global policy in days (0 keeps forever). */
  globalDays: number;
  batchSize?: number;
  /** Removes command output kept outside the database (log files); failures are the caller's to report. */
  removeOutput?: (executionIds: readonly number[]) => Promise<void>;
  /** Called between batches; resolve false to stop the pass early (shutdown, a Lambda's remaining time). */
  shouldContinue?: () => boolean;
}

export interface RetentionPassResult {
  deletedInstances: number;
  batches: number;
  removedOutputs: number;
  /** True when the pass stopped before it was done (shouldContinue said so). */
  stoppedEarly: boolean;
}

/** One retention pass: for each rule, deletes expired instances batch by batch until none is left. */
export async function runRetentionPass(deps: RetentionDeps): Promise<RetentionPassResult> {
  const batchSize = deps.batchSize ?? DEFAULT_RETENTION_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_RETENTION_BATCH_SIZE) {
    throw new RangeError(`retention batch size must be an integer from 1 to ${MAX_RETENTION_BATCH_SIZE}, got ${batchSize}`);
  }
  const result: RetentionPassResult = { deletedInstances: 0, batches: 0, removedOutputs: 0, stoppedEarly: false };
  const plan = planRetention(deps.clock.now(), deps.globalDays, await deps.store.listRetentionOverrides());
  for (const rule of plan.rules) {
    for (;;) {
      if (deps.shouldContinue && !deps.shouldContinue()) {
        result.stoppedEarly = true;
        return result;
      }
      const ids = await deps.store.selectExpiredInstances(rule, batchSize);
      if (ids.length === 0) break;
      const batch = await deps.store.deleteInstances(ids);
      result.batches++;
      result.deletedInstances += batch.instances;
      if (deps.removeOutput && batch.executionIds.length > 0) {
        await deps.removeOutput(batch.executionIds);
        result.removedOutputs += batch.executionIds.length;
      }
      if (ids.length < batchSize) break;
    }
  }
  return result;
}

/**
 * Issue 17: the daily pass rides on a wake the engine has anyway instead of waking Aurora at its own hour. At its
 * hour, an engine asleep until at most RETENTION_DEFER_MAX_MS ahead leaves the pass to that wake (shouldDefer); the
 * scheduler, when it next puts the engine to sleep, starts the pass if none has started since the last daily slot
 * (isDue). An engine asleep longer, or awake, runs it at its hour as before; so a pass is at most about a day late.
 */
export const RETENTION_DEFER_MAX_MS = DAY_MS;

/** The latest daily slot (`hourUtc`:00 UTC) at or before `now`. */
export function latestRetentionSlot(now: Date, hourUtc: number): Date {
  const slot = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hourUtc));
  return slot.getTime() <= now.getTime() ? slot : new Date(slot.getTime() - DAY_MS);
}

/** Whether a pass is owed: none started yet, or none since the latest daily slot. */
export function isRetentionDue(lastStartedAt: Date | undefined, now: Date, hourUtc: number): boolean {
  return lastStartedAt === undefined || lastStartedAt.getTime() < latestRetentionSlot(now, hourUtc).getTime();
}

/** Whether the scheduled pass leaves its work to the engine's next wake: asleep, and that wake is within a day. */
export function shouldDeferRetention(asleepUntil: Date | undefined, now: Date): boolean {
  return asleepUntil !== undefined && asleepUntil.getTime() - now.getTime() <= RETENTION_DEFER_MAX_MS;
}
