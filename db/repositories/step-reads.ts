/** The step store's plain reads (db/repositories/step-store.ts): tokens, instances, definitions, executions. */
import type { Kysely } from 'kysely';
import { TOKEN_STATUS, type Definition, type Execution, type Instance, type Token } from '../../core/model';
import type { Database } from '../schema';
import { EXECUTION_WIDTH, TOKEN_WIDTH, readByWidth, readInChunks, rowWidths, scanWidths } from './paging';
import { toDefinition, toExecution, toInstance, toToken } from './row-mappers';

interface InstanceBatch {
  ids: readonly number[];
  cache: Map<number, Instance | undefined>;
  /** Instances this store wrote during the batch. */
  written: Set<number>;
  loading?: Promise<void>;
}

export class StepReads {
  constructor(protected readonly db: Kysely<Database>) {}

  /** Up to `limit` working or waiting tokens with ids above `afterId`, in id order (a full scan, for tools and tests). */
  async listProcessableTokens(afterId: number, limit: number): Promise<Token[]> {
    // Ids and widths first, then the rows in chunks that fit a Data API response at any token size.
    const widths = rowWidths(
      await this.db
        .selectFrom('tokens')
        .select(['id', TOKEN_WIDTH.as('wide')])
        .where('status', 'in', [TOKEN_STATUS.working, TOKEN_STATUS.waiting])
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute())).map(toToken);
  }

  /**
   * The instances of a pass's batch of tokens: the first step that reads one reads all of them in one statement
   * (a busy pass finishes hundreds of instances, each read on its own before; issue 18). Undefined outside a batch.
   */
  private instanceBatch: InstanceBatch | undefined;

  /** Reads of these instances are gathered until endInstanceBatch(). */
  protected startInstanceBatch(instanceIds: readonly number[]): void {
    this.instanceBatch = { ids: [...new Set(instanceIds)], cache: new Map(), written: new Set() };
  }

  protected endInstanceBatch(): void {
    this.instanceBatch = undefined;
  }

  /** An instance this store just wrote is read again from the database. */
  protected forgetInstance(instanceId: number): void {
    this.instanceBatch?.cache.delete(instanceId);
    this.instanceBatch?.written.add(instanceId);
  }

  async findInstance(instanceId: number): Promise<Instance | undefined> {
    const batch = this.instanceBatch;
    if (batch === undefined) {
      const row = await this.db.selectFrom('job_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
      return row ? toInstance(row) : undefined;
    }
    // Steps run side by side: the first miss reads the batch's instances, the others wait for that read.
    if (!batch.cache.has(instanceId)) {
      batch.loading ??= this.loadInstances(batch, batch.ids.includes(instanceId) ? batch.ids : [instanceId, ...batch.ids]);
      await batch.loading;
    }
    // One this store wrote since (forgetInstance) is read again on its own.
    if (!batch.cache.has(instanceId)) await this.loadInstances(batch, [instanceId], true);
    return batch.cache.get(instanceId);
  }

  /** Caches what it reads, except (unless `fresh`) instances written since: the read may have begun before. */
  private async loadInstances(batch: InstanceBatch, ids: readonly number[], fresh = false): Promise<void> {
    const rows = await readInChunks(ids, (chunk) => this.db.selectFrom('job_instances').selectAll().where('id', 'in', chunk).execute());
    const found = new Map(rows.map((row) => [Number(row.id), toInstance(row)] as const));
    for (const id of ids) if (!batch.cache.has(id) && (fresh || !batch.written.has(id))) batch.cache.set(id, found.get(id));
  }

  async findDefinition(definitionId: number): Promise<Definition | undefined> {
    const row = await this.db.selectFrom('job_definitions').selectAll().where('id', '=', definitionId).executeTakeFirst();
    return row ? toDefinition(row) : undefined;
  }

  async findToken(tokenId: number): Promise<Token | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', tokenId).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async findTokens(tokenIds: readonly number[]): Promise<Token[]> {
    const rows = await readInChunks(tokenIds, async (chunk) => {
      const widths = rowWidths(await this.db.selectFrom('tokens').select(['id', TOKEN_WIDTH.as('wide')]).where('id', 'in', chunk).execute());
      return readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute());
    });
    return rows.map(toToken);
  }

  async findTokensByInstance(instanceId: number): Promise<Token[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.db
        .selectFrom('tokens')
        .select(['id', TOKEN_WIDTH.as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('tokens').selectAll().where('id', 'in', ids).execute())).map(toToken);
  }

  async findExecutionsByInstance(instanceId: number): Promise<Execution[]> {
    const widths = await scanWidths((afterId, limit) =>
      this.db
        .selectFrom('executions')
        .select(['id', EXECUTION_WIDTH.as('wide')])
        .where('job_instance_id', '=', instanceId)
        .where('id', '>', afterId)
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return (await readByWidth(widths, (ids) => this.db.selectFrom('executions').selectAll().where('id', 'in', ids).execute())).map(toExecution);
  }

  async findFinishedInstanceCreatedBetween(definitionId: number, from: Date, to: Date): Promise<Instance | undefined> {
    const row = await this.db
      .selectFrom('job_instances')
      .selectAll()
      .where('job_definition_id', '=', definitionId)
      .where('finished_at', 'is not', null)
      .where('created_at', '>=', from)
      .where('created_at', '<=', to)
      .orderBy('id')
      .executeTakeFirst();
    return row ? toInstance(row) : undefined;
  }
}
