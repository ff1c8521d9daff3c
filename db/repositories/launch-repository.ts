import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { planLaunch, type LaunchPlan } from '../../core/engine/launch-planner';
import { NotFoundError, ValidationError } from '../../core/errors';
import type { Instance, TokenStatus } from '../../core/model';
import type { Clock, IdGenerator, LaunchRequest } from '../../core/ports';
import type { LaunchResult, Launcher } from '../../core/services/instance-operations';
import { isDuplicateKeyError, retryOnLock } from '../db-errors';
import type { Database } from '../schema';
import { insertEvents, insertLogs } from './log-event-writer';
import { withTransaction } from './transaction';
import { fromInstance, fromToken, toDefinition, toInstance } from './row-mappers';

/** Launches one transaction writes at most (its INSERTs stay far below the Data API's 65,536 characters of SQL). */
const MAX_LAUNCHES_PER_COMMIT = 50;
/** Tries of a launch's own transaction when it is a deadlock victim (or waited out a lock). */
const LAUNCH_LOCK_ATTEMPTS = 3;
/** Ids one launch hands out at most: its token, two events and two log lines. */
const IDS_PER_LAUNCH = 5;

interface WaitingLaunch {
  request: LaunchRequest;
  resolve(result: LaunchResult): void;
  reject(error: unknown): void;
}

/**
 * Launches instances. prevent_multi is decided and written in one transaction that first locks the definition
 * row (`SELECT ... FOR UPDATE` where the dialect has it; SQLite serialises writers instead), so two concurrent
 * launches cannot both see "nothing working".
 */
export class LaunchRepository implements Launcher {
  /** Launches waiting for the group commit in progress. */
  private readonly waiting: WaitingLaunch[] = [];
  private committing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly supportsRowLocks: boolean,
  ) {}

  /**
   * Launches in its own transaction. With an idempotency key, a repeat of the same request (env and script) returns
   * the first instance; a different request with a used key is refused (ValidationError), as the IETF
   * Idempotency-Key draft asks, rather than answered with an instance it did not ask for.
   */
  async launch(request: LaunchRequest, idempotencyKey?: string): Promise<LaunchResult> {
    if (idempotencyKey === undefined) {
      return new Promise<LaunchResult>((resolve, reject) => {
        this.waiting.push({ request, resolve, reject });
        if (!this.committing) void this.commitWaiting();
      });
    }
    return this.launchAlone(request, idempotencyKey);
  }

  /**
   * Group commit (issue 18): a launch that arrives while another commits waits, and every launch that waited then
   * commits in one transaction (launchGroup). The first of a burst goes at once, so a lone launch waits for nothing.
   */
  private async commitWaiting(): Promise<void> {
    this.committing = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, MAX_LAUNCHES_PER_COMMIT);
        if (group.length === 1) {
          const [one] = group;
          await this.launchAlone(one!.request).then(one!.resolve, one!.reject);
        } else {
          await this.launchGroup(group);
        }
      }
    } finally {
      this.committing = false;
    }
  }

  /**
   * Launches in one transaction: the definitions locked and their working tokens read once for the group, each
   * launch planned on what the ones before it in the group planned (prevent_multi as if one after the other), and
   * one INSERT per table. A launch of a missing definition fails alone; should the transaction fail, each launch is
   * made again on its own, so its error is its own.
   */
  private async launchGroup(group: readonly WaitingLaunch[]): Promise<void> {
    let outcomes: { result?: LaunchResult; error?: unknown }[];
    try {
      outcomes = await withTransaction(this.db, this.ids, group.length * IDS_PER_LAUNCH, async (trx) => {
        const definitionIds = [...new Set(group.map((w) => w.request.definitionId))];
        let definitionQuery = trx.selectFrom('job_definitions').selectAll().where('id', 'in', definitionIds).orderBy('id');
        if (this.supportsRowLocks) definitionQuery = definitionQuery.forUpdate();
        const definitions = new Map((await definitionQuery.execute()).map((row) => [Number(row.id), toDefinition(row)] as const));
        const statuses = new Map<number, TokenStatus[]>();
        const found = [...definitions.keys()];
        if (found.length > 0) {
          const rows = await trx.selectFrom('tokens').select(['job_definition_id', 'status']).distinct().where('job_definition_id', 'in', found).execute();
          for (const row of rows) statuses.set(Number(row.job_definition_id), [...(statuses.get(Number(row.job_definition_id)) ?? []), row.status as TokenStatus]);
        }
        const plans: LaunchPlan[] = [];
        const answers: { result?: LaunchResult; error?: unknown }[] = [];
        for (const { request } of group) {
          const definition = definitions.get(request.definitionId);
          if (!definition) {
            answers.push({ error: new NotFoundError('job definition', request.definitionId) });
            continue;
          }
          const existing = statuses.get(definition.id) ?? [];
          const plan = await planLaunch({ request, definition, existingTokenStatuses: existing, now: this.clock.now(), ids: this.ids });
          if (plan.token) statuses.set(definition.id, [...existing, plan.token.status]);
          plans.push(plan);
          answers.push({ result: { instance: plan.instance, blocked: plan.blocked, replayed: false } });
        }
        if (plans.length > 0) {
          const env = new Map(group.map((w) => [w.request.instanceId, w.request.env ?? {}] as const));
          await trx.insertInto('job_instances').values(plans.map((p) => fromInstance(p.instance, env.get(p.instance.id) ?? {}, null))).execute();
          const tokens = plans.flatMap((p) => (p.token ? [fromToken(p.token)] : []));
          if (tokens.length > 0) await trx.insertInto('tokens').values(tokens).execute();
          await insertLogs(trx, this.ids, plans.flatMap((p) => p.logs));
          await insertEvents(trx, plans.flatMap((p) => p.events));
        }
        return answers;
      });
    } catch {
      outcomes = [];
      for (const { request } of group) {
        try {
          outcomes.push({ result: await this.launchAlone(request) });
        } catch (error) {
          outcomes.push({ error });
        }
      }
    }
    group.forEach((waiting, i) => {
      const outcome = outcomes[i]!;
      if (outcome.result) waiting.resolve(outcome.result);
      else waiting.reject(outcome.error);
    });
  }

  /** One launch in its own transaction (with an idempotency key: see launch). */
  private async launchAlone(request: LaunchRequest, idempotencyKey?: string): Promise<LaunchResult> {
    const idempotency = idempotencyKey ? { key: idempotencyKey, fingerprint: requestFingerprint(request) } : undefined;
    if (idempotency) {
      const earlier = await this.replay(request.definitionId, idempotency);
      if (earlier) return earlier;
    }
    try {
      // The processor's pass and a launch can lock tokens in either order: a deadlock victim is run again.
      return await retryOnLock(
        () => withTransaction(this.db, this.ids, 0, async (trx) => ({ ...(await this.insertLaunch(trx, request, idempotency)), replayed: false })),
        LAUNCH_LOCK_ATTEMPTS,
      );
    } catch (error) {
      if (idempotency && isDuplicateKeyError(error)) {
        const earlier = await this.replay(request.definitionId, idempotency);
        if (earlier) return earlier;
      }
      throw error;
    }
  }

  /** Launches inside the caller's transaction (a `sub_process:` step, a cron slot). */
  launchIn(trx: Transaction<Database>, request: LaunchRequest): Promise<{ instance: Instance; blocked: boolean }> {
    return this.insertLaunch(trx, request, undefined);
  }

  private async insertLaunch(
    trx: Transaction<Database>,
    request: LaunchRequest,
    idempotency: { key: string; fingerprint: string } | undefined,
  ): Promise<{ instance: Instance; blocked: boolean }> {
    let definitionQuery = trx.selectFrom('job_definitions').selectAll().where('id', '=', request.definitionId);
    if (this.supportsRowLocks) definitionQuery = definitionQuery.forUpdate();
    const row = await definitionQuery.executeTakeFirst();
    if (!row) throw new NotFoundError('job definition', request.definitionId);
    const definition = toDefinition(row);
    const statuses = await trx
      .selectFrom('tokens')
      .select('status')
      .distinct()
      .where('job_definition_id', '=', definition.id)
      .execute();
    const plan = await planLaunch({
      request,
      definition,
      existingTokenStatuses: statuses.map((s) => s.status as TokenStatus),
      now: this.clock.now(),
      ids: this.ids,
    });
    await trx.insertInto('job_instances').values(fromInstance(plan.instance, request.env ?? {}, idempotency ?? null)).execute();
    if (plan.token) await trx.insertInto('tokens').values(fromToken(plan.token)).execute();
    await insertLogs(trx, this.ids, plan.logs);
    await insertEvents(trx, plan.events);
    return { instance: plan.instance, blocked: plan.blocked };
  }

  /** The earlier launch with this key, if any; ValidationError when it was made with a different request. */
  private async replay(definitionId: number, idempotency: { key: string; fingerprint: string }): Promise<LaunchResult | undefined> {
    const row = await this.db
      .selectFrom('job_instances')
      .selectAll()
      .where('job_definition_id', '=', definitionId)
      .where('idempotency_key', '=', idempotency.key)
      .executeTakeFirst();
    if (!row) return undefined;
    // Instances launched before migration 0003 have no fingerprint: any repeat returns them, as it did then.
    if (row.idempotency_fingerprint !== null && row.idempotency_fingerprint !== idempotency.fingerprint) {
      throw new ValidationError(
        `Idempotency-Key ${idempotency.key} was used for instance ${row.id} with a different env or script; use a new key for a new launch`,
      );
    }
    return { instance: toInstance(row), blocked: false, replayed: true };
  }
}

/** SHA-256 of what makes two launch requests the same: the env (in key order) and the ad-hoc script. */
function requestFingerprint(request: Pick<LaunchRequest, 'env' | 'script'>): string {
  const env = Object.entries(request.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify({ env, script: request.script ?? null }))
    .digest('hex');
}
