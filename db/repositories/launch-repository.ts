import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { planLaunch } from '../../core/engine/launch-planner';
import { NotFoundError, ValidationError } from '../../core/errors';
import type { Instance, TokenStatus } from '../../core/model';
import type { Clock, IdGenerator, LaunchRequest } from '../../core/ports';
import type { LaunchResult, Launcher } from '../../core/services/instance-operations';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';
import { insertEvents, insertLogs } from './log-event-writer';
import { withTransaction } from './transaction';
import { fromInstance, fromToken, toDefinition, toInstance } from './row-mappers';

/**
 * Launches instances. prevent_multi is decided and written in one transaction that first locks the definition
 * row (`SELECT ... FOR UPDATE` where the dialect has it; SQLite serialises writers instead), so two concurrent
 * launches cannot both see "nothing working".
 */
export class LaunchRepository implements Launcher {
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
    const idempotency = idempotencyKey ? { key: idempotencyKey, fingerprint: requestFingerprint(request) } : undefined;
    if (idempotency) {
      const earlier = await this.replay(request.definitionId, idempotency);
      if (earlier) return earlier;
    }
    try {
      return await withTransaction(this.db, this.ids, 0, async (trx) => ({ ...(await this.insertLaunch(trx, request, idempotency)), replayed: false }));
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
