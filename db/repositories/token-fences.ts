/**
 * The fences of several chains at once (StepStore.commitChains, issue 18), on MySQL, MariaDB and Aurora MySQL (the
 * Data API): one UPDATE for every chain whose token moves on and one DELETE for every chain whose token ends,
 * instead of a statement per chain. On the Data API each statement is a serial call; on MariaDB the per-chain
 * fences were two of a `true` job's five statements.
 *
 * A row is written only where `version` is the chain's expected version (`version = CASE id WHEN ... END`), exactly
 * as the single fence `WHERE id = ? AND version = ?`. The statements' counts say whether every fence matched; when
 * one did not (another processor moved a token: rare), which one cannot be told from a count, so FencesMissed rolls
 * the transaction back and commitChains writes each chain again on its own, where a lost race answers false.
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { TOKEN_STATUS } from '../../core/model';
import type { StepOutcome } from '../../core/ports';
import { wakeAfterCommit } from '../../core/services/processor-service';
import type { Database } from '../schema';
import { RESPONSE_BUDGET_BYTES, chunkByBytes } from './paging';
import { deleteKeyed, updateKeyed } from './keyed-writes';
import { fromToken } from './row-mappers';

/** Chains per statement: each adds a WHEN to every column's CASE. */
const CHAINS_PER_STATEMENT = 100;

/** Some fence of the batch matched no row: the batch is rolled back and its chains written one by one. */
export class FencesMissed extends Error {
  constructor(missed: number) {
    super(`${missed} token fence(s) of a batch matched no row`);
  }
}

/** A chain's fence: its token's id, the version its first step read, and what its last step leaves. */
interface Fence {
  tokenId: number;
  expectedVersion: number;
  last: StepOutcome;
}

const fenceOf = (chain: readonly StepOutcome[]): Fence => ({ tokenId: chain[0]!.tokenId, expectedVersion: chain[0]!.expectedVersion, last: chain[chain.length - 1]! });

/** Characters of the text a fence sends: what sizes a statement's request. */
const fenceBytes = (fence: Fence): number => (fence.last.token === null ? 0 : fence.last.token.message.length + JSON.stringify(fence.last.token.context).length);

/** `CASE id WHEN <id> THEN <value> ... END` over these fences. */
function caseById(fences: readonly Fence[], value: (fence: Fence) => unknown): RawBuilder<unknown> {
  return sql`case ${sql.ref('id')} ${sql.join(
    fences.map((f) => sql`when ${f.tokenId} then ${value(f)}`),
    sql` `,
  )} end`;
}

/**
 * Fences every chain (two or more, each of its own token) inside the caller's transaction and writes their tokens;
 * throws FencesMissed unless every fence matched. A fork's child that ends wakes its parent, as a single fence does.
 */
export async function fenceAll(trx: Transaction<Database>, chains: readonly (readonly StepOutcome[])[], now: Date): Promise<void> {
  const fences = chains.map(fenceOf);
  if (new Set(fences.map((f) => f.tokenId)).size !== fences.length) throw new FencesMissed(0);
  // By the primary key (keyed-writes.ts): a scan of the small `tokens` table would lock every token.
  const where = (chunk: readonly Fence[]) =>
    sql`${sql.ref('id')} in (${sql.join(chunk.map((f) => f.tokenId))}) and ${sql.ref('version')} = ${caseById(chunk, (f) => f.expectedVersion)}`;
  let missed = 0;
  for (const chunk of chunkByBytes(
    fences.filter((f) => f.last.token !== null),
    fenceBytes,
    RESPONSE_BUDGET_BYTES,
    CHAINS_PER_STATEMENT,
  )) {
    const rows = new Map(chunk.map((f) => [f.tokenId, fromToken(f.last.token!)]));
    const column = (name: 'path' | 'status' | 'message' | 'context' | 'version' | 'updated_at') => caseById(chunk, (f) => rows.get(f.tokenId)![name]);
    const values = {
      path: column('path'),
      status: column('status'),
      message: column('message'),
      context: column('context'),
      version: column('version'),
      updated_at: column('updated_at'),
      wake_at: caseById(chunk, (f) => wakeAfterCommit(f.last, now)),
      waits_on_instance_id: caseById(chunk, (f) => f.last.token!.context.sub_process_id ?? null),
    };
    const set = sql.join(Object.entries(values).map(([name, value]) => sql`${sql.ref(name)} = ${value}`));
    const result = await sql`${updateKeyed(trx, 'tokens', 'primary')} set ${set} where ${where(chunk)}`.execute(trx);
    missed += chunk.length - Number(result.numAffectedRows ?? 0);
  }
  const deleted = fences.filter((f) => f.last.token === null);
  for (const chunk of chunkByBytes(deleted, () => 0, RESPONSE_BUDGET_BYTES, CHAINS_PER_STATEMENT)) {
    const result = await sql`${deleteKeyed(trx, 'tokens', 'primary')} where ${where(chunk)}`.execute(trx);
    missed += chunk.length - Number(result.numAffectedRows ?? 0);
  }
  if (missed > 0) throw new FencesMissed(missed);
  const parents = fences.flatMap((f) => (f.last.token?.status === TOKEN_STATUS.finished && f.last.token.parentId !== null ? [f.last.token.parentId] : []));
  // One by one, by the primary key (as the single fence): rare, and a list could be scanned like the fences.
  for (const id of parents) await trx.updateTable('tokens').set((eb) => ({ wake_at: now, version: eb('version', '+', 1) })).where('id', '=', id).execute();
}
