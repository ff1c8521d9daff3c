import { afterEach, beforeEach, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../core/errors';
import { WorkflowEngine } from '../../core/engine/workflow-engine';
import type { StepStore } from '../../db/repositories/step-store';
import { FakeClock } from '../helpers/in-memory-store';
import { describeEachDialect, createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { eventTypes, finishExecutionsAsAgent, insertDefinition, logMessages, runUntilIdle, servicesFor, statusOf } from '../helpers/engine-fixtures';

describeEachDialect('engine on the database', (dialect) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
  });
  afterEach(async () => {
    await tdb.close();
  });

  it('runs a workflow of noop, env, fork and execute to success, archiving each command', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'env: GREETING="hello world"\nfork:\n  execute: echo a\n  execute: echo b\nexecute: echo $GREETING\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test', env: { FROM: 'api' } });
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(await eventTypes(tdb.db, instance.id)).toEqual(['launch', 'finished']);
    const histories = await tdb.db.selectFrom('execution_histories').select('shell').orderBy('id').execute();
    expect(histories.map((h) => h.shell).sort()).toEqual(['echo $GREETING', 'echo a', 'echo b']);
    expect(await tdb.db.selectFrom('tokens').selectAll().execute()).toEqual([]);
    expect(await tdb.db.selectFrom('executions').selectAll().execute()).toEqual([]);
    const logs = await logMessages(tdb.db, instance.id);
    expect(logs[0]).toBe('Launched by test');
    expect(logs.some((m) => m.includes('[SUCCESS] `echo a` returns 0.'))).toBe(true);
  });

  it('hands the command its environment: token ENV, launch env and KUROKO2_* variables', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 7, "env: A='x y'\nexecute: env\n", { name: 'Envy' });
    const { instance } = await services.operations.launch({ definitionId: 7, launchedBy: 'test', env: { B: 'ß✓' } });
    for (let i = 0; i < 4; i++) await services.processorPass();
    const row = await tdb.db.selectFrom('executions').select('env').executeTakeFirstOrThrow();
    expect(JSON.parse(row.env)).toMatchObject({ A: 'x y', B: 'ß✓', KUROKO2_JOB_DEFINITION_NAME: 'Envy', KUROKO2_JOB_INSTANCE_ID: String(instance.id) });
  });

  it('fails on a non-zero exit, and a manual retry ends in back_to_normal', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'execute: flaky\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await runUntilIdle(services, () => 2);
    expect(await statusOf(tdb.db, instance.id)).toBe('error');
    const token = await tdb.db.selectFrom('tokens').select(['id', 'status']).executeTakeFirstOrThrow();
    expect(token.status).toBe('failure');
    await services.operations.retryToken(instance.id, Number(token.id), 'alice');
    await expect(services.operations.retryToken(instance.id, Number(token.id), 'alice')).rejects.toBeInstanceOf(ConflictError);
    await runUntilIdle(services, () => 0);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(await eventTypes(tdb.db, instance.id)).toEqual(['launch', 'failure', 'retrying', 'back_to_normal']);
  });

  it('writes nothing from a step computed on a stale token version', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\nnoop:\n');
    await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    const [token] = await services.steps.listProcessableTokens(0, 10);
    const first = await services.engine.step(token!);
    const second = await services.engine.step(token!);
    expect(await services.steps.commit(first!)).toBe(true);
    expect(await services.steps.commit(second!)).toBe(false);
    const row = await tdb.db.selectFrom('tokens').select(['path', 'version']).executeTakeFirstOrThrow();
    expect(row).toEqual({ path: '/0-noop', version: 1 });
  });

  it('keeps one command when a second processor read the token before the first queued its command', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'execute: once\n');
    await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    // root -> /0-execute, one step (a pass would go on and queue the command: it steps a token due at once again).
    const [root] = await services.steps.listProcessableTokens(0, 10);
    expect(await services.steps.commit((await services.engine.step(root!))!)).toBe(true);
    const [token] = await services.steps.listProcessableTokens(0, 10);
    const first = await services.engine.step(token!);
    expect(await services.steps.commit(first!)).toBe(true);
    // The second processor saw the token after the first one's fenced update but before its command existed.
    const blind = new WorkflowEngine({ reader: Object.assign(Object.create(services.steps) as StepStore, { findExecutionByToken: async () => undefined }), clock: services.clock, ids: services.ids });
    const second = await blind.step(first!.token!);
    expect(second?.newExecution).toBeDefined();
    expect(await services.steps.commit(second!)).toBe(false);
    expect(await tdb.db.selectFrom('executions').select('shell').execute()).toEqual([{ shell: 'once' }]);
  });

  it('cancels an instance: tokens gone, unclaimed commands dropped, running ones get a TERM once', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'fork:\n  execute: a\n  execute: b\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    for (let i = 0; i < 4; i++) await services.processorPass();
    const executions = await tdb.db.selectFrom('executions').select(['id', 'shell']).orderBy('shell').execute();
    expect(executions.map((e) => e.shell)).toEqual(['a', 'b']);
    await tdb.db.updateTable('executions').set({ claimed_at: new Date(), attempt: 1, pid: 99 }).where('shell', '=', 'a').execute();
    await services.operations.cancel(instance.id, 'carol');
    await expect(services.operations.cancel(instance.id, 'carol')).rejects.toBeInstanceOf(ConflictError);
    expect(await statusOf(tdb.db, instance.id)).toBe('canceled');
    expect(await tdb.db.selectFrom('tokens').selectAll().execute()).toEqual([]);
    const left = await tdb.db.selectFrom('executions').select(['shell', 'kill_requested_at']).execute();
    expect(left).toHaveLength(1);
    expect(left[0]!.shell).toBe('a');
    expect(left[0]!.kill_requested_at).not.toBeNull();
    const signals = await tdb.db.selectFrom('process_signals').select(['signal', 'attempt', 'reason']).execute();
    expect(signals).toEqual([{ signal: 'SIGTERM', attempt: 1, reason: 'This job was canceled by carol.' }]);
    expect(await eventTypes(tdb.db, instance.id)).toEqual(['launch', 'cancellation']);
    // The killed command finishes later: the processor archives it and logs its end.
    await finishExecutionsAsAgent(tdb.db, () => 143);
    await services.processorPass();
    expect(await tdb.db.selectFrom('executions').selectAll().execute()).toEqual([]);
    expect((await logMessages(tdb.db, instance.id)).some((m) => m.includes('`a` returns 143'))).toBe(true);
  });

  it('turns a missing sub-process definition into a critical error that cancels the instance', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'sub_process: 404\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('canceled');
    expect(await eventTypes(tdb.db, instance.id)).toEqual(['launch', 'critical']);
  });

  it('launches a sub process inside the step and continues when it finishes', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'sub_process: 2\necho: done\n');
    await insertDefinition(tdb.db, 2, 'execute: child\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    const sub = await tdb.db.selectFrom('job_instances').select(['launched_by']).where('job_definition_id', '=', 2).executeTakeFirstOrThrow();
    expect(sub.launched_by).toBe(`'#1 job 1' instance#1/${instance.id}`);
  });

  it('applies prevent_multi at launch and replays an idempotent launch', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'execute: long\n', { preventMulti: 1 });
    const first = await services.operations.launch({ definitionId: 1, launchedBy: 'api', idempotencyKey: 'k1', env: { A: '1', B: '2' } });
    const again = await services.operations.launch({ definitionId: 1, launchedBy: 'api', idempotencyKey: 'k1', env: { B: '2', A: '1' } });
    expect(again).toMatchObject({ replayed: true, instance: { id: first.instance.id } });
    // The same key with another request is refused, and launches nothing.
    await expect(services.operations.launch({ definitionId: 1, launchedBy: 'api', idempotencyKey: 'k1', env: { A: '2', B: '2' } })).rejects.toThrow(
      /Idempotency-Key k1 was used for instance \d+ with a different env or script/,
    );
    await expect(services.operations.launch({ definitionId: 1, launchedBy: 'api', idempotencyKey: 'k1', env: { A: '1', B: '2' }, script: 'noop:\n' })).rejects.toThrow(
      ValidationError,
    );
    expect(await tdb.db.selectFrom('job_instances').select('id').execute()).toHaveLength(1);
    // An instance launched before its request was fingerprinted (migration 0003) is returned for any repeat.
    await tdb.db.updateTable('job_instances').set({ idempotency_fingerprint: null }).where('id', '=', first.instance.id).execute();
    const legacy = await services.operations.launch({ definitionId: 1, launchedBy: 'api', idempotencyKey: 'k1', env: { OTHER: 'x' } });
    expect(legacy).toMatchObject({ replayed: true, instance: { id: first.instance.id } });
    const blocked = await services.operations.launch({ definitionId: 1, launchedBy: 'api' });
    expect(blocked.blocked).toBe(true);
    expect(await statusOf(tdb.db, blocked.instance.id)).toBe('canceled');
    expect(await logMessages(tdb.db, blocked.instance.id)).toEqual([
      'Launched by api',
      'This job was canceled because there is already a working or erred job instance.',
    ]);
  });

  it('rejects a bad ad-hoc script before writing anything', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\n');
    await expect(services.operations.launch({ definitionId: 1, launchedBy: 'api', script: 'noop:\nbogus: 1\n' })).rejects.toMatchObject({
      problems: [{ line: 2 }],
    });
    expect(await tdb.db.selectFrom('job_instances').selectAll().execute()).toEqual([]);
  });

  it('launches each cron slot once, records missed slots after downtime, and skips suspended minutes', async () => {
    const clock = new FakeClock(new Date('2026-03-01T10:00:30.000Z'));
    const services = servicesFor(tdb, { clock });
    await insertDefinition(tdb.db, 1, 'noop:\n', { crons: ['*/10 * * * *'], suspendCrons: ['30 * * * *'] });
    await services.schedulerPass(); // first pass: looks back one minute, finds 10:00
    clock.set(new Date('2026-03-01T10:10:05.000Z'));
    expect(await services.schedulerPass()).toMatchObject({ launched: 1, missed: 0 });
    // Down from 10:10 to 12:05: 10:20 .. 12:00 are due (11 slots); 10:30 and 11:30 are suspended; 12:00 launches.
    clock.set(new Date('2026-03-01T12:05:00.000Z'));
    const result = await services.schedulerPass();
    expect(result).toMatchObject({ launched: 1, skipped: 2, missed: 8 });
    const slots = await tdb.db.selectFrom('schedule_slots').select(['outcome']).execute();
    expect(slots.filter((s) => s.outcome === 'launched')).toHaveLength(3);
    const missedEvents = await tdb.db.selectFrom('events').select('type').where('type', '=', 'missed_slot').execute();
    expect(missedEvents).toHaveLength(8);
    const instances = await tdb.db.selectFrom('job_instances').select('launched_by').execute();
    expect(instances.map((i) => i.launched_by)).toContain('"#1 job 1" that is scheduled at 2026-03-01 12:00 UTC by `*/10 * * * *`');
  });
});
