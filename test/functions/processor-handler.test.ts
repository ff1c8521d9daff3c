import { MAX_STEPS_PER_TOKEN } from '../../core/services/processor-service';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hintsInBody } from '../../adapters/aws/sqs-doorbell';
import { ValidationError } from '../../core/errors';
import { ENV_KEYS } from '../../app/config/env-keys';
import { finishExecutionsAsAgent, insertDefinition, servicesFor, statusOf } from '../helpers/engine-fixtures';
import type * as ProcessorModule from '../../functions/processor/handler';
import type * as SchedulerModule from '../../functions/scheduler/handler';
import type { DataApiCall } from '../helpers/data-api-server';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, awake, DOORBELL, functionEnv, lambdaContext, NOTIFIER, PROCESSOR, scheduledEvent } from './function-fixtures';

/** Every Data API call of the file, as the stand-in served it. */
const dataApiCalls: DataApiCall[] = [];
const lambda = mockClient(LambdaClient);
const sqs = mockClient(SQSClient);

let tdb: TestDatabase;
let processor: typeof ProcessorModule;
let scheduler: typeof SchedulerModule;

/** Holds a call of the stand-in before it runs (a test sets it; none by default). */
let gate: ((call: { operation: string; sql?: string }) => Promise<void>) | undefined;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { dataApi: { onCall: (call) => dataApiCalls.push(call), gate: (call) => gate?.(call) ?? Promise.resolve() } });
  applyEnv(functionEnv(tdb, { [ENV_KEYS.notifierFunction]: NOTIFIER, [ENV_KEYS.processorFunction]: PROCESSOR, [ENV_KEYS.doorbellQueueUrl]: DOORBELL }));
  processor = await import('../../functions/processor/handler');
  scheduler = await import('../../functions/scheduler/handler');
});
afterAll(async () => {
  await processor?.runtime.close();
  await scheduler?.runtime.close();
  await tdb?.close();
});
beforeEach(() => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  sqs.reset();
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [] });
});

const invokedFunctions = () =>
  lambda.commandCalls(InvokeCommand).map((c) => ({ name: c.args[0].input.FunctionName, type: c.args[0].input.InvocationType }));

describe('processor handler', () => {
  it('rings the agents\' doorbell when a pass queued a command, and not when nothing moved (issue 18)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 7, 'execute: echo rung\n');
    const { instance } = await services.operations.launch({ definitionId: 7, launchedBy: 'test' });
    const moved = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(moved.committed).toBeGreaterThan(0);
    const rings = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input);
    expect(rings.map((input) => input.QueueUrl)).toEqual([DOORBELL]);
    // One message per command queued (one here), so as many agents wake.
    expect(moved.queued).toBe(1);
    expect(rings[0]!.Entries!.length).toBe(1);
    // The message names the command it was rung for: the agent that takes it may claim it by id (one call, not two).
    const queuedId = Number((await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance.id).executeTakeFirstOrThrow()).id);
    expect(hintsInBody(rings[0]!.Entries![0]!.MessageBody)).toEqual([queuedId]);
    sqs.resetHistory();
    // A failing doorbell never fails the tick: the agents' fallback poll covers it.
    sqs.on(SendMessageBatchCommand).rejects(new Error('AccessDenied'));
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    sqs.resetHistory();
    expect(awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR))).committed).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it('rings as soon as a pass queued a command, before the passes that follow it in the same invocation (issue 18)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 8, 'execute: echo one\nexecute: echo two\n');
    const { instance } = await services.operations.launch({ definitionId: 8, launchedBy: 'test' });
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    // The first command's finish: one pass moves the token past it, the next queues the second command, a third
    // finds nothing. The ring must not wait for that third pass: count the Data API calls made after it.
    let callsAtRing: number | undefined;
    sqs.on(SendMessageBatchCommand).callsFake(() => {
      callsAtRing ??= tdb.dataApi!.callCount();
      return { Successful: [] };
    });
    const moved = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    const callsAtReturn = tdb.dataApi!.callCount();
    expect(moved.committed).toBeGreaterThanOrEqual(2);
    expect(await tdb.db.selectFrom('executions').select('shell').where('job_instance_id', '=', instance.id).where('finished_at', 'is', null).execute()).toEqual([
      { shell: 'echo two' },
    ]);
    expect(callsAtRing).toBeDefined();
    expect(callsAtReturn).toBeGreaterThan(callsAtRing!);
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
  });

  it('reaches the doorbell within a dozen Data API calls of a command\'s finish: three before the first write (issue 18)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 9, 'execute: echo one\nexecute: echo two\n');
    const { instance } = await services.operations.launch({ definitionId: 9, launchedBy: 'test' });
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    let callsAtRing: number | undefined;
    sqs.on(SendMessageBatchCommand).callsFake(() => {
      callsAtRing ??= dataApiCalls.length;
      return { Successful: [] };
    });
    const before = dataApiCalls.length;
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    const beforeRing = dataApiCalls.slice(before, callsAtRing);
    // The lease's take, then two reads: the due tokens' and their executions' widths, then both joined (six reads
    // before: ended commands, their tokens' widths, woken tokens, tokens, executions' widths, executions).
    expect(beforeRing[0]?.sql).toMatch(/^update `leases`/);
    expect(beforeRing.slice(1).findIndex((c) => !/^select/i.test(c.sql ?? ''))).toBe(2);
    // Then the archive's transaction and the next command's writes: a dozen calls or so, and the ring.
    expect(beforeRing.length).toBeLessThanOrEqual(3 + 6 + 2 + 2);
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
  });

  it("steps the commands an agent's nudge names, their tokens read beside the lease's take: no listing first (issue 18)", async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 13, 'execute: echo one\nexecute: echo two\n');
    const { instance } = await services.operations.launch({ definitionId: 13, launchedBy: 'test' });
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    const first = await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance.id).executeTakeFirstOrThrow();
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    // The lease's take waits until the hinted read and the step's BeginTransaction have arrived: sent one after the
    // other, it would wait in vain.
    let hintedReadArrived!: () => void;
    let beginArrived!: () => void;
    const arrived = Promise.all([new Promise<void>((resolve) => (hintedReadArrived = resolve)), new Promise<void>((resolve) => (beginArrived = resolve))]);
    let leaseWaitedInVain = false;
    gate = async (call) => {
      if (/`e`\.`id` in/.test(call.sql ?? '')) hintedReadArrived();
      if (call.operation === 'BeginTransaction') beginArrived();
      if (/^update `leases`/.test(call.sql ?? '')) {
        await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 2_000)).then(() => (leaseWaitedInVain = true))]);
      }
    };
    let callsAtRing: number | undefined;
    sqs.on(SendMessageBatchCommand).callsFake(() => {
      callsAtRing ??= dataApiCalls.length;
      return { Successful: [] };
    });
    const before = dataApiCalls.length;
    try {
      awake(await processor.handler({ nudge: true, finished: [Number(first.id)] }, lambdaContext(PROCESSOR)));
    } finally {
      gate = undefined;
    }
    expect(leaseWaitedInVain).toBe(false);
    const beforeRing = dataApiCalls.slice(before, callsAtRing);
    // (The history insert runs beside the fence, so it may be answered first: history-beside.test.ts.)
    const beforeFence = beforeRing.slice(0, beforeRing.findIndex((c) => /^update `tokens`/.test(c.sql ?? ''))).filter((c) => !/^insert into `execution_histories`/.test(c.sql ?? ''));
    // The lease, the hinted read and the transaction's begin, nothing else: no listing of due tokens first.
    const shapes = beforeFence.map((c) => (/^update `leases`/.test(c.sql ?? '') ? 'lease' : /`e`\.`id` in/.test(c.sql ?? '') ? 'hinted' : c.operation === 'BeginTransaction' ? 'begin' : c.sql));
    expect(shapes.sort()).toEqual(['begin', 'hinted', 'lease']);
    const next = await tdb.db.selectFrom('executions').select(['id', 'shell']).where('job_instance_id', '=', instance.id).executeTakeFirstOrThrow();
    expect(next.shell).toBe('echo two');
    // A hint is only a hint: one naming a command not finished (or not there) steps nothing itself, and the listing
    // still finds what the database says is due; a malformed one is ignored.
    const beforeStale = dataApiCalls.length;
    expect(awake(await processor.handler({ nudge: true, finished: [Number(next.id), 987_654_321] }, lambdaContext(PROCESSOR))).committed).toBe(0);
    // The transaction begun for it was not needed: rolled back before the invocation returned, none left open.
    expect(dataApiCalls.slice(beforeStale).filter((c) => c.operation === 'RollbackTransaction')).toHaveLength(1);
    expect(tdb.dataApi!.openTransactions()).toBe(0);
    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    awake(await processor.handler({ nudge: true, finished: ['x', -1] }, lambdaContext(PROCESSOR)));
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
  });

  it('moves tokens on a scheduled event and on a nudge, then nudges the notifier', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\nexecute: echo hi\nnoop:\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });

    const first = awake(await processor.handler(scheduledEvent('kuroko-test-ProcessorTick'), lambdaContext(PROCESSOR)));
    expect(first.committed).toBeGreaterThanOrEqual(2);
    expect(first.stoppedBy).toBe('idle');
    const execution = await tdb.db.selectFrom('executions').select(['shell', 'job_instance_id']).executeTakeFirstOrThrow();
    expect(execution).toMatchObject({ shell: 'echo hi', job_instance_id: instance.id });
    expect(invokedFunctions()).toEqual([{ name: NOTIFIER, type: 'Event' }]);

    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    const second = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(second.committed).toBeGreaterThanOrEqual(2);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
  });

  it('nudges no notifier for a step that announces nothing: a command finished and the next one queued (issue 18)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 4, 'execute: echo one\nexecute: echo two\n');
    const { instance } = await services.operations.launch({ definitionId: 4, launchedBy: 'test' });
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(invokedFunctions()).toEqual([{ name: NOTIFIER, type: 'Event' }]);
    lambda.reset();
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });

    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    const middle = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(middle.committed).toBeGreaterThanOrEqual(2);
    expect(await tdb.db.selectFrom('executions').select('shell').where('job_instance_id', '=', instance.id).where('finished_at', 'is', null).execute()).toEqual([{ shell: 'echo two' }]);
    expect(invokedFunctions()).toEqual([]);

    expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
    awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(invokedFunctions()).toEqual([{ name: NOTIFIER, type: 'Event' }]);
  });

  it('returns without nudging when nothing moved', async () => {
    const result = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(result).toMatchObject({ passes: 1, committed: 0, stoppedBy: 'idle' });
    expect(invokedFunctions()).toEqual([]);
  });

  it('stops looping when the remaining time falls under the safety margin', async () => {
    const services = servicesFor(tdb);
    // More steps than one pass chains for a token (MAX_STEPS_PER_TOKEN), so one pass cannot finish the job.
    await insertDefinition(tdb.db, 2, 'noop:\n'.repeat(3 * MAX_STEPS_PER_TOKEN));
    await services.operations.launch({ definitionId: 2, launchedBy: 'test' });
    const result = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR, () => 1_000)));
    expect(result).toMatchObject({ passes: 1, stoppedBy: 'time' });
    expect(result.committed).toBeGreaterThan(0);
    // The next invocation picks up where this one stopped.
    const rest = awake(await processor.handler({ nudge: true }, lambdaContext(PROCESSOR)));
    expect(rest.committed).toBeGreaterThan(0);
  });

  it('rejects an event that is neither a tick nor a nudge', async () => {
    await expect(processor.handler({ hello: 'world' }, lambdaContext(PROCESSOR))).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('scheduler handler', () => {
  it('launches a due cron slot once and nudges the processor', async () => {
    await insertDefinition(tdb.db, 3, 'noop:\n', { crons: ['* * * * *'], createdAt: new Date(Date.now() - 10 * 60_000) });
    // The first pass ever looks back one minute: an every-minute cron always has a slot in it.
    const result = awake(await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick'), lambdaContext('kuroko-test-scheduler')));
    expect(result.launched).toBe(1);
    expect(invokedFunctions()).toEqual([{ name: PROCESSOR, type: 'Event' }]);
    const instances = await tdb.db.selectFrom('job_instances').select('launched_by').where('job_definition_id', '=', 3).execute();
    expect(instances).toHaveLength(1);
  });
});
