/**
 * Aurora MySQL through the RDS Data API: kysely-data-api's dialect (MySQL query compiler with `:n` named
 * parameters, typed field values) with one change, the migration lock.
 *
 * Kysely's MysqlAdapter locks migrations with GET_LOCK, which relies on every statement of the run using one
 * session. The Data API runs each statement outside a transaction on whichever pooled connection is free, so a
 * GET_LOCK would be taken on one session and "released" on another, and could stay held by a pooled session.
 * Instead the lock is a lease row: one conditional UPDATE takes it while it is free or expired, so a migrator that
 * died mid-run blocks the next one for at most the lease time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import type { BeginTransactionCommandOutput, RDSData } from '@aws-sdk/client-rds-data';
import { MysqlAdapter, sql } from 'kysely';
import type { Kysely, MigrationLockOptions } from 'kysely';
import { DataApiDialect } from 'kysely-data-api';
import { DEFAULT_RESUME_BUDGET_MS, withDataApiRetry, type DataApiRetryOptions } from './data-api-retry';

const LEASE_TABLE = 'kuroko_migration_lease';
const LEASE_ROW_ID = 'migrations';
/** Longer than any migration run should take (a Lambda lives at most 15 minutes). */
export const MIGRATION_LEASE_SECONDS = 15 * 60;
/** Pause between attempts to take a held lease. */
const LEASE_POLL_MS = 250;
const MS_PER_SECOND = 1000;


/** MySQL adapter whose migration lock works without session affinity. */
export class DataApiMysqlAdapter extends MysqlAdapter {
  readonly #holder = randomUUID();

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's adapter contract passes an untyped db
  override async acquireMigrationLock(db: Kysely<any>, _options: MigrationLockOptions): Promise<void> {
    await sql`create table if not exists ${sql.id(LEASE_TABLE)} (
      id varchar(64) not null primary key,
      holder varchar(64) not null,
      expires_at bigint not null
    )`.execute(db);
    await sql`insert ignore into ${sql.id(LEASE_TABLE)} (id, holder, expires_at) values (${LEASE_ROW_ID}, '', 0)`.execute(db);
    // The database clock decides expiry, so processes with skewed clocks agree.
    const deadline = Date.now() + (MIGRATION_LEASE_SECONDS + 60) * MS_PER_SECOND;
    for (;;) {
      const result = await sql`update ${sql.id(LEASE_TABLE)}
        set holder = ${this.#holder}, expires_at = unix_timestamp() + ${MIGRATION_LEASE_SECONDS}
        where id = ${LEASE_ROW_ID} and expires_at < unix_timestamp()`.execute(db);
      if (Number(result.numAffectedRows ?? 0) === 1) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for the migration lease in ${LEASE_TABLE}`);
      await sleep(LEASE_POLL_MS);
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's adapter contract passes an untyped db
  override async releaseMigrationLock(db: Kysely<any>, _options: MigrationLockOptions): Promise<void> {
    await sql`update ${sql.id(LEASE_TABLE)} set holder = '', expires_at = 0
      where id = ${LEASE_ROW_ID} and holder = ${this.#holder}`.execute(db);
  }
}

export interface KurokoDataApiConfig {
  /** Called on the first statement (and reused): the AWS SDK is loaded only by processes that use the Data API. */
  client: () => Promise<RDSData>;
  resourceArn: string;
  secretArn: string;
  database: string;
  /** How each call waits out a resume, throttling and safe-to-repeat server errors (data-api-retry.ts). */
  retry?: DataApiRetryOptions;
}

/** The RDSData methods kysely-data-api calls, each waiting for the client the first time. */
type DataApiCalls = Pick<RDSData, 'executeStatement' | 'beginTransaction' | 'commitTransaction' | 'rollbackTransaction'>;

/**
 * A transaction begun ahead of need (issue 18): BeginTransaction is a call of its own, and a caller that knows a
 * transaction will follow its reads (the processor function, handed finished commands to step) begins it beside
 * them rather than after. The next transaction to begin takes it; one nobody took is rolled back on release().
 */
export interface TransactionPrimer {
  /** Begins a transaction now for the next one to take (none if one is already waiting). */
  prime(): void;
  /** Rolls back a primed transaction nobody took (one call then, none otherwise). */
  release(): Promise<void>;
}

type BeginInput = Parameters<RDSData['beginTransaction']>[0];

function deferredClient(client: () => Promise<RDSData>, retry: DataApiRetryOptions, target: { resourceArn: string; secretArn: string; database: string }): DataApiCalls & TransactionPrimer {
  const begin = (input: BeginInput) => withDataApiRetry({ operation: 'beginTransaction' }, retry, async () => (await client()).beginTransaction(input));
  const rollback = (input: Parameters<RDSData['rollbackTransaction']>[0]) =>
    withDataApiRetry({ operation: 'rollbackTransaction', transactionId: input.transactionId }, retry, async () => (await client()).rollbackTransaction(input));
  let primed: Promise<BeginTransactionCommandOutput | undefined> | undefined;
  return {
    prime() {
      primed ??= begin({ ...target }).catch(() => undefined);
    },
    async release() {
      const waiting = primed;
      primed = undefined;
      const transactionId = (await waiting)?.transactionId;
      if (transactionId) await rollback({ resourceArn: target.resourceArn, secretArn: target.secretArn, transactionId }).catch(() => undefined);
    },
    executeStatement: (input: Parameters<RDSData['executeStatement']>[0]) =>
      withDataApiRetry({ operation: 'executeStatement', sql: input.sql, transactionId: input.transactionId }, retry, async () =>
        (await client()).executeStatement(input),
      ),
    beginTransaction: async (input: BeginInput) => {
      const waiting = primed;
      primed = undefined;
      // A primed begin that failed is simply begun again.
      return (await waiting) ?? begin(input);
    },
    commitTransaction: (input: Parameters<RDSData['commitTransaction']>[0]) =>
      withDataApiRetry({ operation: 'commitTransaction', transactionId: input.transactionId }, retry, async () =>
        (await client()).commitTransaction(input),
      ),
    rollbackTransaction: rollback,
  } as DataApiCalls & TransactionPrimer;
}

/** kysely-data-api's MySQL dialect with a Data API safe migration lock, a client made on first use, and retries. */
export class KurokoDataApiDialect extends DataApiDialect {
  readonly primer: TransactionPrimer;

  constructor({ client, retry, ...target }: KurokoDataApiConfig) {
    const calls = deferredClient(client, retry ?? { budgetMs: DEFAULT_RESUME_BUDGET_MS }, target);
    // kysely-data-api calls only the four methods above on its client.
    super({ mode: 'mysql', driver: { client: calls as unknown as RDSData, ...target } });
    this.primer = { prime: () => calls.prime(), release: () => calls.release() };
  }

  override createAdapter(): MysqlAdapter {
    return new DataApiMysqlAdapter();
  }
}
