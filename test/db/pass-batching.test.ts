/**
 * Issue 18: a processor pass that ends many instances wakes their waiters (sub process parents, `wait:` tokens)
 * with one pair of statements per batch, not a pair per instance, and the waiters still wake; and a token its step
 * leaves due at once is stepped again in the same pass (a finished command archived and the next one queued, a
 * chain of noops), reading no execution for it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { INSTANCE_STATUS } from '../../core/model';
import { createEngineServices } from '../../app/engine-services';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { finishExecutionsAsAgent, insertDefinition, runUntilIdle, statusOf } from '../helpers/engine-fixtures';
import { describeEachDialect, createTestDatabase, type TestDatabase } from '../helpers/test-database';

const JOBS = 30;

describeEachDialect('processor pass batching', (dialect) => {
  let tdb: TestDatabase;
  let counted: DatabaseHandle;
  const wakeStatements: string[] = [];
  const executionReads: string[] = [];
  const widthReads: string[] = [];
  const orphanReads: string[] = [];
  const instanceReads: string[] = [];
  const selects: string[] = [];
  const executionDeletes: string[] = [];
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    counted = createDatabase(tdb.url, {
      log: (event) => {
        const text = event.query.sql;
        if (/^select/i.test(text)) selects.push(text);
        if (/^delete (.executions. )?from .executions./.test(text)) executionDeletes.push(text);
        if (/^update .tokens. set .wake_at. = \?, .version. = .version. \+ \?/.test(text)) wakeStatements.push(text);
        if (/^select .* from .executions. where .token_id. = \?/.test(text)) executionReads.push(text);
        if (/^select \* from .job_instances. where .id. (=|in)/.test(text)) instanceReads.push(text);
        if (/not exists \(select .t.\..id. from .tokens. as .t./.test(text)) orphanReads.push(text);
        if (/^select .*coalesce\(length.* as .wide./.test(text)) widthReads.push(text);
      },
    });
  });
  afterAll(async () => {
    await counted?.close();
    await tdb?.close();
  });

  it(`wakes the waiters of ${JOBS} ended instances with one pair of statements per batch, and a sub process parent still wakes`, async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n');
    await insertDefinition(tdb.db, 2, 'sub_process: 1\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const parent = (await services.operations.launch({ definitionId: 2, launchedBy: 'test' })).instance.id;
    const jobs = [];
    for (let i = 0; i < JOBS; i++) jobs.push((await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id);
    const passes = await runUntilIdle(services);
    for (const id of [parent, ...jobs]) expect(await statusOf(tdb.db, id)).toBe(INSTANCE_STATUS.success);
    // One pair per batch that ended something, at most one batch per pass here; a pair per instance was 62.
    expect(wakeStatements.length).toBeLessThanOrEqual(2 * passes);
    expect(wakeStatements.length).toBeLessThan(JOBS);
  });

  it('steps a token again in the same pass while its step leaves it due at once', async () => {
    await insertDefinition(tdb.db, 3, 'noop:\nnoop:\nnoop:\nnoop:\n');
    await insertDefinition(tdb.db, 4, 'execute: true\nexecute: true\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const noops = (await services.operations.launch({ definitionId: 3, launchedBy: 'test' })).instance.id;
    await services.processorPass();
    expect(await statusOf(tdb.db, noops)).toBe(INSTANCE_STATUS.success);

    const commands = (await services.operations.launch({ definitionId: 4, launchedBy: 'test' })).instance.id;
    executionReads.length = 0;
    // One pass moves the token to its first node and queues the command, reading no execution on the way.
    await services.processorPass();
    expect(executionReads).toEqual([]);
    const first = await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', commands).execute();
    expect(first).toHaveLength(1);
    await finishExecutionsAsAgent(tdb.db);
    executionReads.length = 0;
    widthReads.length = 0;
    selects.length = 0;
    // One pass archives the finished command and queues the next one, reading no execution on the way.
    await services.processorPass();
    // Outside the Data API: the ended commands joined to their tokens, then the tokens due joined to their
    // executions (issue 18: three before, the executions read again).
    if (dialect !== 'data-api') expect(selects).toHaveLength(2);
    // On the Data API (issue 18): the due tokens' and their executions' widths in one statement, then tokens and
    // executions joined in one (six statements before: each a call between a command's end and the next command).
    if (dialect === 'data-api') expect(selects).toHaveLength(2);
    // Rows are read by their widths first only where responses are bounded (the Data API's 1 MiB).
    if (dialect === 'data-api') expect(widthReads.length).toBeGreaterThan(0);
    else expect(widthReads).toEqual([]);
    const second = await tdb.db.selectFrom('executions').select(['id', 'finished_at']).where('job_instance_id', '=', commands).execute();
    expect(second).toHaveLength(1);
    expect(second[0]!.id).not.toBe(first[0]!.id);
    expect(second[0]!.finished_at).toBeNull();
    expect(executionReads).toEqual([]);
  });

  it('looks for finished commands without a token only when the listing of ended commands shows one, and archives it', async () => {
    await insertDefinition(tdb.db, 5, 'execute: sleep 100\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const { instance } = await services.operations.launch({ definitionId: 5, launchedBy: 'test' });
    await services.processorPass();
    await tdb.db.updateTable('executions').set({ claimed_at: new Date(), started_at: new Date(), attempt: 1, pid: 99 }).where('job_instance_id', '=', instance.id).execute();
    await services.operations.cancel(instance.id, 'test');
    await services.processorPass();
    orphanReads.length = 0;
    await services.processorPass();
    expect(orphanReads).toEqual([]);
    // The canceled command ends: its token is gone, so the next pass finds it and archives it.
    await tdb.db.updateTable('executions').set({ finished_at: new Date(), exit_status: 143 }).where('job_instance_id', '=', instance.id).execute();
    await services.processorPass();
    expect(orphanReads).toHaveLength(1);
    expect(await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance.id).execute()).toEqual([]);
    expect(await tdb.db.selectFrom('execution_histories').select('id').where('job_instance_id', '=', instance.id).execute()).toHaveLength(1);
    await services.processorPass();
    expect(orphanReads).toHaveLength(1);
  });

  it('reads the instances of a batch in one statement when its steps end them', async () => {
    await insertDefinition(tdb.db, 6, 'noop:\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const ids = [];
    for (let i = 0; i < 12; i++) ids.push((await services.operations.launch({ definitionId: 6, launchedBy: 'test' })).instance.id);
    instanceReads.length = 0;
    await services.processorPass();
    for (const id of ids) expect(await statusOf(tdb.db, id)).toBe(INSTANCE_STATUS.success);
    // The Data API reads each on its own (an instance row holds the script: its answers are bounded).
    expect(instanceReads).toHaveLength(dialect === 'data-api' ? ids.length : 1);
  });

  it('ends a job whose last command finished with one delete from executions: the archived row and the unclaimed ones', async () => {
    await insertDefinition(tdb.db, 7, 'execute: true\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const done = (await services.operations.launch({ definitionId: 7, launchedBy: 'test' })).instance.id;
    const waiting = (await services.operations.launch({ definitionId: 7, launchedBy: 'test' })).instance.id;
    await services.processorPass();
    const finishedAt = new Date();
    await tdb.db.updateTable('executions').set({ attempt: 1, claimed_at: finishedAt, started_at: finishedAt, pid: 4242, finished_at: finishedAt, exit_status: 0 }).where('job_instance_id', '=', done).execute();
    executionDeletes.length = 0;
    await services.processorPass();
    expect(await statusOf(tdb.db, done)).toBe(INSTANCE_STATUS.success);
    // The instance's end and the archive of its command were two deletes.
    expect(executionDeletes).toHaveLength(1);
    expect(await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', done).execute()).toEqual([]);
    expect(await tdb.db.selectFrom('execution_histories').select('exit_status').where('job_instance_id', '=', done).execute()).toEqual([{ exit_status: 0 }]);
    // Another job's queued command stays queued.
    expect(await tdb.db.selectFrom('executions').select('claimed_at').where('job_instance_id', '=', waiting).execute()).toEqual([{ claimed_at: null }]);
  });
});
