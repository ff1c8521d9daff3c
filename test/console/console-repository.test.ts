/** The console's people and overview queries on every dialect (driver value shapes differ; the results must not). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsoleQueryRepository } from '../../db/repositories/console-query-repository';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { DefinitionRepository, type AlsoWrite } from '../../db/repositories/definition-repository';
import { QueryRepository } from '../../db/repositories/query-repository';
import type { EngineServices } from '../../app/engine-services';
import { insertDefinition, runUntilIdle, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

describeEachDialect('console repository', (dialect) => {
  let tdb: TestDatabase;
  let services: EngineServices;
  let people: ConsoleRepository;
  let reads: ConsoleQueryRepository;
  let definitions: DefinitionRepository;

  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    services = servicesFor(tdb);
    people = new ConsoleRepository(tdb.db, services.ids, services.clock);
    definitions = new DefinitionRepository(tdb.db, services.ids, services.clock, {
      rowLocks: tdb.capabilities.rowLocks,
      validationContext: async () => ({}),
    });
    reads = new ConsoleQueryRepository(tdb.db, services.clock, definitions);
    await insertDefinition(tdb.db, 1, 'execute: ok\n', { name: 'ok-job' });
    await insertDefinition(tdb.db, 2, 'execute: bad\n', { name: 'bad-job' });
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('records sign-ins, admins and stars by lower-cased email', async () => {
    const first = await people.recordSignIn('Alice@Example.com', 'Alice');
    const again = await people.recordSignIn('alice@example.com', 'Alice A.');
    expect(again.id).toBe(first.id);
    expect(again.name).toBe('Alice A.');
    expect((await people.listUsers()).map((u) => u.email)).toEqual(['alice@example.com']);

    await tdb.db.transaction().execute((trx) => people.replaceAdmins(trx, 1, ['Bob@Example.com', 'alice@example.com', 'bob@example.com', '']));
    expect((await people.adminsOf([1, 2])).get(1)).toEqual(['alice@example.com', 'bob@example.com']);
    expect(await people.isDefinitionAdmin(1, 'BOB@example.com')).toBe(true);
    expect(await people.isDefinitionAdmin(2, 'bob@example.com')).toBe(false);
    await tdb.db.transaction().execute((trx) => people.replaceAdmins(trx, 1, ['carol@example.com']));
    expect((await people.adminsOf()).get(1)).toEqual(['carol@example.com']);

    await people.setStar('Alice@example.com', 1, true);
    await people.setStar('alice@example.com', 1, true);
    await people.setStar('alice@example.com', 2, true);
    await people.setStar('alice@example.com', 2, false);
    expect([...(await people.starredIds('alice@example.com'))]).toEqual([1]);
    await tdb.db.transaction().execute((trx) => people.forgetDefinition(trx, 1));
    expect((await people.starredIds('alice@example.com')).size).toBe(0);
    expect((await people.adminsOf([1])).size).toBe(0);
  });

  it('saves a definition and its admin list together, or neither', async () => {
    // The fixtures took definition ids 1 and 2 by hand; the generator must be past them.
    for (let id = await services.ids.nextId(); id <= 2; id = await services.ids.nextId());
    const withAdmins = await definitions.create({ name: 'owned', script: 'noop:\n' }, 'test', (trx, id) =>
      people.replaceAdmins(trx, id, ['Owner@example.com']),
    );
    expect((await people.adminsOf([withAdmins.id])).get(withAdmins.id)).toEqual(['owner@example.com']);

    const failing: AlsoWrite = (trx, id) =>
      people.replaceAdmins(trx, id, ['someone@example.com']).then(() => Promise.reject(new Error('the admin list could not be saved')));
    await expect(definitions.create({ name: 'half-saved', script: 'noop:\n' }, 'test', failing)).rejects.toThrow('the admin list could not be saved');
    expect(await tdb.db.selectFrom('job_definitions').select('id').where('name', '=', 'half-saved').execute()).toEqual([]);
    await expect(definitions.update(withAdmins.id, { description: 'changed' }, 'test', failing)).rejects.toThrow('could not be saved');
    expect((await definitions.get(withAdmins.id)).description).toBe('');
    expect((await people.adminsOf([withAdmins.id])).get(withAdmins.id)).toEqual(['owner@example.com']);
    await expect(definitions.delete(withAdmins.id, failing)).rejects.toThrow('could not be saved');
    expect((await definitions.get(withAdmins.id)).name).toBe('owned');
  });

  it('reads the starred definitions of a person as the definition repository does', async () => {
    const lists = { tags: ['zeta', 'alpha'], crons: ['0 * * * *', '30 2 * * *'], suspendCrons: ['0 3 * * *'] };
    const starred = await definitions.create({ name: 'starred', script: 'noop:\n', ...lists }, 'test');
    await definitions.create({ name: 'not starred', script: 'noop:\n', ...lists }, 'test');
    await people.setStar('Dave@example.com', starred.id, true);
    expect(await people.starredDefinitions('dave@example.com')).toEqual([await definitions.get(starred.id)]);
    expect(await people.starredDefinitions('nobody@example.com')).toEqual([]);
  });

  it('reads the overview: latest, working, failed, stats and timelines', async () => {
    const launch = async (definitionId: number) => (await services.operations.launch({ definitionId, launchedBy: 'test' })).instance.id;
    const ok = await launch(1);
    const bad = await launch(2);
    await runUntilIdle(services, (shell) => (shell === 'bad' ? 1 : 0));
    const working = await launch(1);
    await tdb.db
      .insertInto('memory_samples')
      .values({ id: 99_001, execution_id: 1, job_instance_id: ok, job_definition_id: 1, rss_kb: 2048, sampled_at: new Date() })
      .execute();

    const latest = await reads.latestInstances([1, 2]);
    expect(latest.get(1)?.id).toBe(working);
    expect(latest.get(2)?.id).toBe(bad);
    expect((await reads.workingInstances(10)).map((i) => [i.id, i.definitionName])).toEqual([[working, 'ok-job']]);
    expect((await reads.workingInstances(10, [2])).length).toBe(0);
    expect((await reads.failedInstances(10)).map((i) => [i.id, i.definitionName])).toEqual([[bad, 'bad-job']]);
    expect(await reads.canceledSince(new Date(0), 10)).toEqual([]);
    const canceled = await launch(2);
    await services.operations.cancel(canceled, 'test');
    expect((await reads.canceledSince(new Date(0), 10)).map((i) => [i.id, i.definitionName])).toEqual([[canceled, 'bad-job']]);

    const stats = await reads.instanceStats(1, 10);
    expect(stats.map((s) => [s.instanceId, s.status, s.maxRssKb])).toEqual([
      [ok, 'success', 2048],
      [working, 'working', null],
    ]);
    // A finished instance's executions are archived, so nothing is live.
    const done = await reads.instancePage(1, ok);
    expect([done.definitionName, done.env, done.outputs, done.detail.executions.map((e) => [e.shell, e.exitStatus])]).toEqual(['ok-job', {}, [], [['ok', 0]]]);
    await expect(reads.instancePage(2, ok)).rejects.toThrow(/job instance/);

    const from = new Date(Date.now() - 3_600_000);
    const to = new Date(Date.now() + 60_000);
    const executions = await reads.executionTimeline(from, to, 100);
    expect(executions.map((b) => [b.instanceId, b.group, b.definitionName, b.state]).sort()).toEqual(
      [
        [ok, 'test-host', 'ok-job', 'success'],
        [bad, 'test-host', 'bad-job', 'failure'],
      ].sort(),
    );
    expect((await reads.executionTimeline(from, to, 100, 'test-host')).length).toBe(2);
    expect(await reads.executionTimeline(from, to, 100, 'another-host')).toEqual([]);
    const instances = await reads.instanceTimeline(from, to, 100);
    expect(instances.map((b) => [b.instanceId, b.definitionName, b.state]).sort()).toEqual(
      [
        [ok, 'ok-job', 'success'],
        [bad, 'bad-job', 'error'],
        [working, 'ok-job', 'working'],
        [canceled, 'bad-job', 'canceled'],
      ].sort(),
    );
    expect(await reads.instanceTimeline(new Date(Date.now() - 7_200_000), new Date(Date.now() - 3_600_000), 100)).toEqual([]);

    // Live output: the working instance's command, once queued and writing, shows what it has kept so far.
    // One node per step: a few passes bring the token to its command.
    for (let pass = 0; pass < 3; pass++) await services.processorPass();
    await tdb.db.updateTable('executions').set({ output_head: 'so far\n', output_tail: '' }).where('job_instance_id', '=', working).execute();
    const [queued] = await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', working).execute();
    const live = await reads.instancePage(1, working);
    expect(live.outputs).toEqual([{ executionId: Number(queued!.id), outputHead: 'so far\n', outputTail: '' }]);
    expect(live.detail.executions.map((e) => [e.id, e.finishedAt])).toEqual([[Number(queued!.id), null]]);
    // The executions page names each command's job from the same statement.
    const unfinished = await new QueryRepository(tdb.db, services.clock).listUnfinishedExecutions(10);
    expect(unfinished.map((e) => [e.id, e.instanceId, e.definitionName])).toEqual([[Number(queued!.id), working, 'ok-job']]);
  });
});
