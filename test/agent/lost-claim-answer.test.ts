/**
 * A claim whose COMMIT succeeded on the database but whose answer never reached the agent (the connection died
 * during COMMIT; on the Data API, a commit call that timed out). The agent must not treat it as "nothing claimed"
 * and leave the rows claimed by a live worker with no pid, which nothing else recovers: it puts them back in the
 * queue (fenced on the attempt), so they run, each exactly once. Real MariaDB; the fault is injected in the driver,
 * after the database acknowledged the COMMIT.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, MysqlDialect, type CompiledQuery, type DatabaseConnection, type Dialect, type MysqlPool, type QueryResult } from 'kysely';
import mysql2 from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mysqlPoolOptions, type DatabaseHandle } from '../../db/connection';
import type { Database } from '../../db/schema';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { queueExecutions, testAgent, type TestAgent } from './agent-fixtures';

const FIRST_ID = 7_000;
const EXECUTIONS = 3;

interface Fault {
  /** How many more claim COMMITs lose their answer. */
  armed: number;
  injected: number;
  /** Fail the agent's look for claims whose answer was lost, as when the database stays unreachable. */
  failLostClaimCheck: boolean;
}

/** A MySQL dialect whose claims, while armed, commit on the database and then fail towards the caller. */
function lostCommitDialect(uri: string, fault: Fault): Dialect {
  const pool = mysql2.createPool(mysqlPoolOptions(uri));
  pool.on('connection', (connection) => connection.query("SET time_zone = '+00:00'"));
  const inner = new MysqlDialect({ pool: pool as unknown as MysqlPool });
  /** Connections whose open transaction has claimed executions. */
  const claiming = new WeakSet<DatabaseConnection>();
  const patched = new WeakSet<DatabaseConnection>();
  const inTransaction = new WeakSet<DatabaseConnection>();
  const loseAnswer = (): void => {
    if (fault.armed <= 0) return;
    fault.armed--;
    fault.injected++;
    // What mysql2 raises when the server's answer (to the claim's COMMIT or autocommitted UPDATE) never arrives.
    throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
  };
  return {
    createAdapter: () => inner.createAdapter(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createDriver: () => {
      const driver = inner.createDriver();
      const acquire = driver.acquireConnection.bind(driver);
      const commit = driver.commitTransaction.bind(driver);
      driver.acquireConnection = async () => {
        const connection = await acquire();
        if (!patched.has(connection)) {
          patched.add(connection);
          const execute = connection.executeQuery.bind(connection);
          connection.executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
            if (/^update `executions` set `claimed_at` =/.test(query.sql)) {
              if (!inTransaction.has(connection)) {
                // An autocommitted claim (one UPDATE, issue 18): it commits as it runs, and its answer is what is lost.
                const result = await execute<R>(query);
                if (Number(result.numAffectedRows ?? 0) > 0) loseAnswer();
                return result;
              }
              claiming.add(connection);
            }
            if (fault.failLostClaimCheck && /^select `id`, `attempt` from `executions` where `worker_id` in/.test(query.sql)) {
              return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }));
            }
            return await execute<R>(query);
          };
        }
        return connection;
      };
      const begin = driver.beginTransaction.bind(driver);
      driver.beginTransaction = async (connection, settings) => {
        await begin(connection, settings);
        inTransaction.add(connection);
      };
      const rollback = driver.rollbackTransaction.bind(driver);
      driver.rollbackTransaction = async (connection) => {
        inTransaction.delete(connection);
        claiming.delete(connection);
        await rollback(connection);
      };
      driver.commitTransaction = async (connection) => {
        const wasClaim = claiming.has(connection);
        claiming.delete(connection);
        inTransaction.delete(connection);
        await commit(connection);
        if (wasClaim) loseAnswer();
      };
      return driver;
    },
  };
}

let tdb: TestDatabase;
let handle: DatabaseHandle;
let scratch: string;
let agent: TestAgent | undefined;
const fault: Fault = { armed: 0, injected: 0, failLostClaimCheck: false };

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  const db = new Kysely<Database>({ dialect: lostCommitDialect(tdb.url, fault) });
  handle = { db, dialect: 'mysql', capabilities: tdb.capabilities, close: () => db.destroy() };
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-lost-claim-'));
});
afterAll(async () => {
  await agent?.dispose();
  await handle?.close();
  await tdb?.close();
  rmSync(scratch, { recursive: true, force: true });
});

it('runs, exactly once each, the executions of a claim whose COMMIT succeeded but whose answer was lost', { timeout: 90_000 }, async () => {
  const ledger = join(scratch, 'ran.txt');
  // The lease outlives the test: nothing here may rely on a lease running out.
  agent = testAgent(handle, { slots: EXECUTIONS, leaseMs: 10 * 60_000 });
  await agent.agent.start();
  fault.armed = 1;
  await queueExecutions(
    tdb.db,
    Array.from({ length: EXECUTIONS }, (_, i) => ({
      id: FIRST_ID + i,
      shell: `echo "$N" >> '${ledger}'`,
      env: { N: String(FIRST_ID + i) },
    })),
  );

  const rows = await waitFor(
    async () => {
      const all = await tdb.db.selectFrom('executions').select(['id', 'attempt', 'exit_status', 'finished_at', 'pid']).orderBy('id').execute();
      return all.every((row) => row.finished_at !== null) ? all : undefined;
    },
    { timeoutMs: 30_000, description: 'every execution finished' },
  );
  expect(fault.injected).toBe(1);
  expect(rows.map((row) => row.exit_status)).toEqual(Array(EXECUTIONS).fill(0));
  expect(rows.every((row) => row.pid !== null)).toBe(true);
  // At least one was claimed twice: first by the claim whose answer was lost, then again with a new attempt.
  expect(Math.max(...rows.map((row) => Number(row.attempt)))).toBe(2);
  const ran = readFileSync(ledger, 'utf8').trim().split('\n').sort();
  expect(ran).toEqual(rows.map((row) => String(row.id)));
});

it('leaves its worker row for the monitor when it stops without having released a lost claim', { timeout: 60_000 }, async () => {
  await agent?.dispose();
  agent = undefined;
  fault.failLostClaimCheck = true;
  const stopping = testAgent(handle, { slots: 1, leaseMs: 10 * 60_000 });
  await stopping.agent.start();
  const workerId = stopping.agent.workerId!;
  fault.armed = 1;
  fault.injected = 0;
  await queueExecutions(tdb.db, [{ id: FIRST_ID + 100, shell: 'true' }]);
  await waitFor(() => fault.injected === 1, { description: 'the claim whose answer is lost' });
  await stopping.dispose();
  // Claimed under this worker, never run: the worker row stays, so the monitor's worker_lost check handles it.
  const row = await tdb.db.selectFrom('executions').select(['worker_id', 'pid', 'finished_at']).where('id', '=', FIRST_ID + 100).executeTakeFirstOrThrow();
  expect(row).toEqual({ worker_id: workerId, pid: null, finished_at: null });
  expect(await tdb.db.selectFrom('workers').select('id').where('id', '=', workerId).executeTakeFirst()).toEqual({ id: workerId });
});
