import type { Kysely, Transaction } from 'kysely';
import { planLaunch } from '../../core/engine/launch-planner';
import { NotFoundError } from '../../core/errors';
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

  /** Launches in its own transaction; with an idempotency key a repeated request returns the first instance. */
  async launch(request: LaunchRequest, idempotencyKey?: string): Promise<LaunchResult> {
    if (idempotencyKey) {
      const earlier = await this.findByIdempotencyKey(request.definitionId, idempotencyKey);
      if (earlier) return { instance: earlier, blocked: false, replayed: true };
    }
    try {
      return await withTransaction(this.db, this.ids, 0, async (trx) => ({ ...(await this.launchIn(trx, request, idempotencyKey)), replayed: false }));
    } catch (error) {
      if (idempotencyKey && isDuplicateKeyError(error)) {
        const earlier = await this.findByIdempotencyKey(request.definitionId, idempotencyKey);
        if (earlier) return { instance: earlier, blocked: false, replayed: true };
      }
      throw error;
    }
  }

  /** Launches inside the caller's transaction (a `sub_process:` step, a cron slot). */
  async launchIn(trx: Transaction<Database>, request: LaunchRequest, idempotencyKey?: string): Promise<{ instance: Instance; blocked: boolean }> {
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
    await trx.insertInto('job_instances').values(fromInstance(plan.instance, request.env ?? {}, idempotencyKey ?? null)).execute();
    if (plan.token) await trx.insertInto('tokens').values(fromToken(plan.token)).execute();
    await insertLogs(trx, this.ids, plan.logs);
    await insertEvents(trx, plan.events);
    return { instance: plan.instance, blocked: plan.blocked };
  }

  private async findByIdempotencyKey(definitionId: number, key: string): Promise<Instance | undefined> {
    const row = await this.db
      .selectFrom('job_instances')
      .selectAll()
      .where('job_definition_id', '=', definitionId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();
    return row ? toInstance(row) : undefined;
  }
}
