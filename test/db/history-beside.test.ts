/**
 * Issue 18, AWS W1: a command's history row is written once (execution_histories_execution_key, migration 0011), so
 * on the Data API the processor writes it beside the step's transaction instead of inside it, one serial call fewer.
 */
import { Migrator } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createEngineServices } from '../../app/engine-services';
import { historyOf } from '../../core/engine/workflow-engine';
import type { StepOutcome } from '../../core/ports';
import { MIGRATIONS } from '../../db/migrations';
import { migrateToLatest } from '../../db/migrator';
import { insertHistories } from '../../db/repositories/step-batch-writer';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import type { DataApiCall } from '../helpers/data-api-server';
import { finishExecutionsAsAgent, insertDefinition, runUntilIdle, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const at = new Date('2026-01-01T00:00:00.000Z');
const history = (id: number, executionId: number) =>
  ({ id, execution_id: executionId, job_instance_id: 1, job_definition_id: 1, token_id: 1, queue: '@default', shell: 'true', finished_at: at }) as const;

describeEachDialect('history rows, one per command', (dialect) => {
  let tdb: TestDatabase | undefined;
  afterEach(async () => {
    await tdb?.close();
    tdb = undefined;
  });

  it('migration 0011 keeps the oldest of rows written twice for one command, then refuses a second', async () => {
    tdb = await createTestDatabase(dialect, { migrate: false });
    const before = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0011'));
    await new Migrator({ db: tdb.db, provider: { getMigrations: () => Promise.resolve(before) } }).migrateToLatest();
    await tdb.db.insertInto('execution_histories').values([history(1, 100), history(2, 100), history(3, 101), history(4, 100)]).execute();
    const run = await migrateToLatest(tdb.db);
    expect(run.applied).toEqual(['0011_history_execution_key']);
    const rows = await tdb.db.selectFrom('execution_histories').select(['id', 'execution_id']).orderBy('id').execute();
    expect(rows.map((r) => [Number(r.id), Number(r.execution_id)])).toEqual([[1, 100], [3, 101]]);
    await expect(tdb.db.insertInto('execution_histories').values(history(5, 101)).execute()).rejects.toThrow();
  });

  it('archives a command twice into one row: the second write keeps the first', async () => {
    tdb = await createTestDatabase(dialect);
    const base = { id: 7, uuid: 'u', tokenId: 1, instanceId: 1, definitionId: 1, queue: '@default', shell: 'true', env: {}, createdAt: at, attempt: 1, workerId: null, hostname: 'h',
      leaseExpiresAt: null, claimedAt: at, pid: 1, startedAt: at, finishedAt: at, exitStatus: 0, termSignal: null, outputHead: '', outputTail: '', killRequestedAt: null, lostReason: null };
    await insertHistories(tdb.db, [historyOf(base, 1)]);
    await insertHistories(tdb.db, [historyOf(base, 2), historyOf({ ...base, id: 8 }, 3)]);
    const rows = await tdb.db.selectFrom('execution_histories').select(['id', 'execution_id']).orderBy('id').execute();
    expect(rows.map((r) => [Number(r.id), Number(r.execution_id)])).toEqual([[1, 7], [3, 8]]);
  });
});

describeEachDialect('history beside the transaction', (dialect) => {
  let tdb: TestDatabase;
  let counted: DatabaseHandle;
  const calls: DataApiCall[] = [];
  /** Holds a Data API call before it runs (set by a test). */
  let gate: ((call: { operation: string; sql?: string }) => Promise<void>) | undefined;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect, { dataApi: { onCall: (call) => calls.push(call), gate: (call) => gate?.(call) ?? Promise.resolve() } });
    counted = createDatabase(tdb.url);
  });
  afterAll(async () => {
    await counted?.close();
    await tdb?.close();
  });

  it('writes it beside the fence on the Data API, inside the transaction elsewhere; a rolled-back step leaves one row', async () => {
    await insertDefinition(tdb.db, 1, 'execute: echo one\nexecute: echo two\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await services.processorPass();
    await finishExecutionsAsAgent(tdb.db);
    // The first try loses its race after the history was written (another processor moved the token meanwhile).
    const steps = services.steps;
    const commitChains = steps.commitChains.bind(steps);
    steps.commitChains = async (chains: readonly (readonly StepOutcome[])[]) => {
      steps.commitChains = commitChains;
      await tdb.db.updateTable('tokens').set((eb) => ({ version: eb('version', '+', 1) })).where('job_instance_id', '=', instance.id).execute();
      return commitChains(chains);
    };
    // On the Data API, the token's fence waits until the history insert has arrived: written one after the other,
    // it would wait in vain.
    let historyArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (historyArrived = resolve));
    let fenceWaitedInVain = false;
    gate = async (call) => {
      if (/^insert into `execution_histories`/.test(call.sql ?? '')) historyArrived();
      if (/^update `tokens` set `path`/.test(call.sql ?? '')) {
        await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 2_000)).then(() => (fenceWaitedInVain = true))]);
      }
    };
    const from = calls.length;
    try {
      expect((await services.processorPass()).lostRaces).toBe(1);
    } finally {
      gate = undefined;
    }
    const histories = () => tdb.db.selectFrom('execution_histories').select('execution_id').where('job_instance_id', '=', instance.id).execute();
    if (dialect === 'data-api') {
      expect(fenceWaitedInVain).toBe(false);
      const inserts = calls.slice(from).filter((c) => /^insert into `execution_histories`/.test(c.sql ?? ''));
      expect(inserts.map((c) => c.inTransaction)).toEqual([false]);
      // Written before the step that lost; the archive that follows finds it.
      expect(await histories()).toHaveLength(1);
    } else {
      expect(await histories()).toHaveLength(0);
    }
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(await histories()).toHaveLength(2);
  });
});
