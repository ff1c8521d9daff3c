/**
 * Issue 18: a processor pass writes the chains of steps of its batch together (a noop then the job's end in one
 * chain, many tokens' chains in one transaction with one INSERT per table), each chain fenced on the version its
 * first step read; and launches that arrive while another commits are committed together (group commit), each
 * launch's prevent_multi and errors still its own.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngineServices } from '../../app/engine-services';
import { NotFoundError } from '../../core/errors';
import { INSTANCE_STATUS } from '../../core/model';
import type { StepOutcome } from '../../core/ports';
import { fromExecution } from '../../db/repositories/row-mappers';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { eventTypes, finishExecutionsAsAgent, insertDefinition, logMessages, runUntilIdle, statusOf } from '../helpers/engine-fixtures';
import { describeEachDialect, createTestDatabase, type TestDatabase } from '../helpers/test-database';

const JOBS = 20;

describeEachDialect('batched commits', (dialect) => {
  let tdb: TestDatabase;
  let counted: DatabaseHandle;
  const statements: string[] = [];
  const count = (pattern: RegExp) => statements.filter((s) => pattern.test(s)).length;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    counted = createDatabase(tdb.url, { log: (event) => void statements.push(event.query.sql) });
  });
  afterAll(async () => {
    await counted?.close();
    await tdb?.close();
  });

  it(`ends ${JOBS} noop jobs in one pass with one INSERT per table for all of them, each job's logs and events intact`, async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids: number[] = [];
    for (let i = 0; i < JOBS; i++) ids.push((await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id);
    statements.length = 0;
    const result = await services.processorPass();
    expect(result.committed).toBe(2 * JOBS);
    for (const id of ids) {
      expect(await statusOf(tdb.db, id)).toBe(INSTANCE_STATUS.success);
      expect(await eventTypes(tdb.db, id)).toEqual(['launch', 'finished']);
      expect(await logMessages(tdb.db, id)).toHaveLength(3);
    }
    // Each chain (the noop, then the end) is fenced once: a statement per step was two fenced writes per job. On
    // MySQL and the Data API every chain's fence in one statement (token-fences.ts); on SQLite one per chain.
    expect(count(/^(update|delete from) .tokens. .*where .id. = \S+ and .version. = \S+$/)).toBe(dialect === 'sqlite' ? JOBS : 0);
    expect(count(/^delete .tokens. from .tokens. force index \(primary\) where .id. in \(.*\) and .version. = case .id. when/)).toBe(dialect === 'sqlite' ? 0 : 1);
    // One transaction for the round on every dialect, the Data API too.
    expect(count(/^insert into .instance_logs./)).toBe(1);
    expect(count(/^insert into .events./)).toBe(1);
    expect(count(/^update .job_instances./)).toBe(1);
  });

  it.skipIf(dialect === 'sqlite')("fences every queued command's token in one UPDATE, each token written with its own values", async () => {
    await insertDefinition(tdb.db, 40, 'execute: echo four\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) ids.push((await services.operations.launch({ definitionId: 40, launchedBy: 'test' })).instance.id);
    const before = await tdb.db.selectFrom('tokens').select(['id', 'version']).where('job_instance_id', 'in', ids).execute();
    statements.length = 0;
    expect((await services.processorPass()).committed).toBe(2 * 6);
    expect(count(/^update .tokens. force index \(primary\) set .*where .id. in \(.*\) and .version. = case .id. when/)).toBe(1);
    expect(count(/^update .tokens. .*where .id. = \S+ and .version. = \S+$/)).toBe(0);
    const after = await tdb.db.selectFrom('tokens').selectAll().where('job_instance_id', 'in', ids).execute();
    expect(after).toHaveLength(6);
    for (const token of after) {
      // Two steps (the start, then the command queued), one chain: fenced on the first's version, the last's written.
      expect(Number(token.version)).toBe(Number(before.find((b) => Number(b.id) === Number(token.id))!.version) + 2);
      expect(token.status).toBe('working');
      expect(token.waits_on_instance_id).toBeNull();
    }
    const queued = await tdb.db.selectFrom('executions').select(['job_instance_id', 'token_id', 'shell']).where('job_instance_id', 'in', ids).execute();
    expect(queued.map((e) => Number(e.token_id)).sort()).toEqual(after.map((t) => Number(t.id)).sort());
  });

  it('writes nothing of a chain whose token another processor moved, and the rest of the batch still commits', async () => {
    await insertDefinition(tdb.db, 2, 'noop:\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await services.operations.launch({ definitionId: 2, launchedBy: 'test' })).instance.id);
    const steps = services.steps;
    const commitChains = steps.commitChains.bind(steps);
    const lost = ids[2]!;
    // Another processor steps one token between this pass's steps and its commit.
    steps.commitChains = async (chains: readonly (readonly StepOutcome[])[]) => {
      await tdb.db.updateTable('tokens').set((eb) => ({ version: eb('version', '+', 1) })).where('job_instance_id', '=', lost).execute();
      steps.commitChains = commitChains;
      return commitChains(chains);
    };
    const result = await services.processorPass();
    expect(result.lostRaces).toBe(1);
    for (const id of ids) expect(await statusOf(tdb.db, id)).toBe(id === lost ? INSTANCE_STATUS.working : INSTANCE_STATUS.success);
    expect(await logMessages(tdb.db, lost)).toHaveLength(1);
    await services.processorPass();
    expect(await statusOf(tdb.db, lost)).toBe(INSTANCE_STATUS.success);
  });

  it("writes each chain alone when the batch's transaction fails, so one bad outcome blocks no other", async () => {
    await insertDefinition(tdb.db, 3, 'execute: true\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await services.operations.launch({ definitionId: 3, launchedBy: 'test' })).instance.id);
    const steps = services.steps;
    const commitChains = steps.commitChains.bind(steps);
    const bad = ids[1]!;
    // Another processor queues that token's command first: the batch's INSERT of the commands hits the unique key.
    steps.commitChains = async (chains: readonly (readonly StepOutcome[])[]) => {
      steps.commitChains = commitChains;
      const queued = chains.flat().find((o) => o.instanceId === bad && o.newExecution)!.newExecution!;
      await tdb.db.insertInto('executions').values(fromExecution({ ...queued, id: queued.id + 1_000_000, uuid: 'other' })).execute();
      return commitChains(chains);
    };
    const result = await services.processorPass();
    expect(result.lostRaces).toBe(1);
    const queued = await tdb.db.selectFrom('executions').select(['job_instance_id', 'uuid']).where('job_instance_id', 'in', ids).orderBy('job_instance_id').execute();
    expect(queued.map((e) => Number(e.job_instance_id))).toEqual(ids);
    expect(queued.find((e) => Number(e.job_instance_id) === bad)!.uuid).toBe('other');
  });

  // Issue 18: on the Data API every statement is a call on the way from a command's exit to the next start.
  it.each([1, 6])("queues a token's next command in its archived command's row (%i job(s)): one upsert, no delete", async (jobs) => {
    const definitionId = 10 + jobs;
    await insertDefinition(tdb.db, definitionId, 'execute: echo one\nexecute: echo two\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids: number[] = [];
    for (let i = 0; i < jobs; i++) ids.push((await services.operations.launch({ definitionId, launchedBy: 'test' })).instance.id);
    await services.processorPass();
    await finishExecutionsAsAgent(tdb.db);
    const first = await tdb.db.selectFrom('executions').select(['id', 'token_id', 'attempt']).where('job_instance_id', 'in', ids).execute();
    expect(first).toHaveLength(jobs);
    statements.length = 0;
    await services.processorPass();
    // (Other tests' jobs that end here delete their rows by instance.)
    expect(count(/^delete from .executions. where .id./)).toBe(0);
    expect(count(/^insert into .executions. .*(on duplicate key update|on conflict)/)).toBe(1);
    const next = await tdb.db.selectFrom('executions').selectAll().where('job_instance_id', 'in', ids).execute();
    expect(next.map((e) => e.shell).sort()).toEqual(Array(jobs).fill('echo two'));
    for (const row of next) {
      const old = first.find((f) => Number(f.token_id) === Number(row.token_id))!;
      // A new command: its own id, unclaimed, attempt 0, nothing of the finished one left in the row.
      expect(Number(row.id)).not.toBe(Number(old.id));
      expect(row.claimed_at).toBeNull();
      expect(row.finished_at).toBeNull();
      expect(Number(row.attempt)).toBe(0);
      expect(row.output_head).toBe('');
      // A late report of the finished command, fenced on its id and attempt, finds no row (as after a delete).
      const late = await tdb.db.updateTable('executions').set({ pid: 1 }).where('id', '=', old.id).where('attempt', '=', old.attempt).executeTakeFirst();
      expect(Number(late.numUpdatedRows)).toBe(0);
    }
    const histories = await tdb.db.selectFrom('execution_histories').select('execution_id').where('job_instance_id', 'in', ids).execute();
    expect(histories.map((h) => Number(h.execution_id)).sort()).toEqual(first.map((f) => Number(f.id)).sort());
    await runUntilIdle(services);
    for (const id of ids) expect(await statusOf(tdb.db, id)).toBe(INSTANCE_STATUS.success);
  });

  it('wakes the waiters of ended instances at once, and writes no wake when a read finds no waiter', async () => {
    await insertDefinition(tdb.db, 70, 'noop:\n');
    await insertDefinition(tdb.db, 71, 'wait: 70/daily\n');
    await insertDefinition(tdb.db, 72, 'sub_process: 70\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const wakes = () => count(/^update .tokens. set .wake_at. = \S+, .version. = .version. \+ \S+ where/);
    const probes = () => count(/^select exists \(select .id. from .tokens. where/);
    // Nothing waits: the instance's end costs one read and no UPDATE (each was an autocommit; on AWS a Data API call).
    const alone = (await services.operations.launch({ definitionId: 70, launchedBy: 'test' })).instance.id;
    statements.length = 0;
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, alone)).toBe(INSTANCE_STATUS.success);
    expect(probes()).toBe(1);
    expect(wakes()).toBe(0);
    // A `wait:` token, and a sub_process parent waiting for its child: each is woken when the instance it waits for
    // ends, not at its recheck (WAITING_RECHECK_MS, 5 s), which runUntilIdle would not wait for.
    await tdb.db.deleteFrom('job_instances').where('id', '=', alone).execute();
    const waiter = (await services.operations.launch({ definitionId: 71, launchedBy: 'test' })).instance.id;
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, waiter)).toBe(INSTANCE_STATUS.working);
    const parent = (await services.operations.launch({ definitionId: 72, launchedBy: 'test' })).instance.id;
    statements.length = 0;
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, parent)).toBe(INSTANCE_STATUS.success);
    expect(await statusOf(tdb.db, waiter)).toBe(INSTANCE_STATUS.success);
    expect(wakes()).toBeGreaterThanOrEqual(2);
  });

  it('commits launches that arrive together in one transaction; prevent_multi and a missing definition stay per launch', async () => {
    await insertDefinition(tdb.db, 4, 'execute: sleep 100\n');
    await insertDefinition(tdb.db, 5, 'execute: sleep 100\n', { preventMulti: 1 });
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    statements.length = 0;
    const launches = Array.from({ length: 12 }, (_, i) => services.operations.launch({ definitionId: i === 7 ? 999 : i % 2 === 0 ? 4 : 5, launchedBy: `l${i}` }));
    const settled = await Promise.allSettled(launches);
    const missing = settled[7]!;
    expect(missing.status).toBe('rejected');
    expect((missing as PromiseRejectedResult).reason).toBeInstanceOf(NotFoundError);
    const launched = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ i, ...s.value }] : []));
    expect(launched).toHaveLength(11);
    // Definition 4 launches all six; definition 5 (prevent_multi) the first of its five only.
    expect(launched.filter((l) => l.i % 2 === 0).every((l) => !l.blocked)).toBe(true);
    expect(launched.filter((l) => l.i % 2 === 1 && !l.blocked)).toHaveLength(1);
    const working = await tdb.db.selectFrom('tokens').select('job_definition_id').where('job_definition_id', 'in', [4, 5]).execute();
    expect(working.filter((t) => Number(t.job_definition_id) === 5)).toHaveLength(1);
    expect(working.filter((t) => Number(t.job_definition_id) === 4)).toHaveLength(6);
    for (const l of launched) {
      expect(await eventTypes(tdb.db, l.instance.id)).toEqual(l.blocked ? ['launch', 'cancellation'] : ['launch']);
      expect(await logMessages(tdb.db, l.instance.id)).toHaveLength(l.blocked ? 2 : 1);
    }
    // The first launch commits alone; the eleven that arrived meanwhile in one transaction.
    expect(count(/^insert into .job_instances./)).toBeLessThanOrEqual(2);
  });
});
