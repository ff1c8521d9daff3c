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
import type { StepOutcome } from '../../core/ports';
import { wakeAfterCommit } from '../../core/services/processor-service';
import type { Database, InsertableTokenRow } from '../schema';
import { RESPONSE_BUDGET_BYTES, chunkByBytes, chunked } from './paging';
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

/** A fence whose token moves on, with the token's row as its last step leaves it. */
interface Move extends Fence {
  row: InsertableTokenRow;
}

const fenceOf = (chain: readonly StepOutcome[]): Fence => ({ tokenId: chain[0]!.tokenId, expectedVersion: chain[0]!.expectedVersion, last: chain[chain.length - 1]! });

/** `CASE id WHEN <id> THEN <value> ... END` over these fences. */
function caseById<F extends Fence>(fences: readonly F[], value: (fence: F) => unknown): RawBuilder<unknown> {
  return sql`case ${sql.ref('id')} ${sql.join(
    fences.map((f) => sql`when ${f.tokenId} then ${value(f)}`),
    sql` `,
  )} end`;
}

/**
 * Fences every chain (two or more, each of its own token) inside the caller's transaction and writes their tokens;
 * throws FencesMissed unless every fence matched. Waking a finished fork child's parent is the caller's, as after a
 * single fence.
 */
export async function fenceAll(trx: Transaction<Database>, chains: readonly (readonly StepOutcome[])[], now: Date): Promise<void> {
  const fences = chains.map(fenceOf);
  if (new Set(fences.map((f) => f.tokenId)).size !== fences.length) throw new FencesMissed(0);
  // By the primary key (keyed-writes.ts): a scan of the small `tokens` table would lock every token.
  const where = (chunk: readonly Fence[]) =>
    sql`${sql.ref('id')} in (${sql.join(chunk.map((f) => f.tokenId))}) and ${sql.ref('version')} = ${caseById(chunk, (f) => f.expectedVersion)}`;
  const moves: Move[] = fences.flatMap((f) => (f.last.token === null ? [] : [{ ...f, row: fromToken(f.last.token) }]));
  let missed = 0;
  // Sized by the text each row sends (its message and its context as written).
  for (const chunk of chunkByBytes(moves, (m) => m.row.message.length + m.row.context.length, RESPONSE_BUDGET_BYTES, CHAINS_PER_STATEMENT)) {
    const column = (name: 'path' | 'status' | 'message' | 'context' | 'version' | 'updated_at') => caseById(chunk, (m) => m.row[name]);
    const values = {
      path: column('path'),
      status: column('status'),
      message: column('message'),
      context: column('context'),
      version: column('version'),
      updated_at: column('updated_at'),
      wake_at: caseById(chunk, (m) => wakeAfterCommit(m.last, now)),
      waits_on_instance_id: caseById(chunk, (m) => m.last.token!.context.sub_process_id ?? null),
    };
    const set = sql.join(Object.entries(values).map(([name, value]) => sql`${sql.ref(name)} = ${value}`));
    const result = await sql`${updateKeyed(trx, 'tokens', 'primary')} set ${set} where ${where(chunk)}`.execute(trx);
    missed += chunk.length - Number(result.numAffectedRows ?? 0);
  }
  for (const chunk of chunked(
    fences.filter((f) => f.last.token === null),
    CHAINS_PER_STATEMENT,
  )) {
    const result = await sql`${deleteKeyed(trx, 'tokens', 'primary')} where ${where(chunk)}`.execute(trx);
    missed += chunk.length - Number(result.numAffectedRows ?? 0);
  }
  if (missed > 0) throw new FencesMissed(missed);
}
