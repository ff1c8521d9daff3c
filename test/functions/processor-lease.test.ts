/**
 * The processor as a single runner per deployment (issue 18, app/lambda/processor-lease.ts): real handlers over the
 * Data API stand-in. Asynchronous invocations are not bounded by anything but the account's concurrency (reserved
 * concurrency is opt-in: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), so two
 * nudges in the same second start two invocations: the lease makes the second one ask the first to run again.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENV_KEYS } from '../../app/config/env-keys';
import { TICK_KIND } from '../../app/lambda/lambda-events';
import { processorFunction } from '../../app/lambda/processor-function';
import { PROCESSOR_LEASE } from '../../db/repositories/lease-repository';
import { finishExecutionsAsAgent, insertDefinition, servicesFor, statusOf } from '../helpers/engine-fixtures';
import type * as ProcessorModule from '../../functions/processor/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, awake, DOORBELL, functionEnv, lambdaContext, NOTIFIER, PROCESSOR, scheduledEvent } from './function-fixtures';

const lambda = mockClient(LambdaClient);
const sqs = mockClient(SQSClient);

let tdb: TestDatabase;
let processor: typeof ProcessorModule;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  applyEnv(functionEnv(tdb, { [ENV_KEYS.notifierFunction]: NOTIFIER, [ENV_KEYS.processorFunction]: PROCESSOR, [ENV_KEYS.doorbellQueueUrl]: DOORBELL }));
  processor = await import('../../functions/processor/handler');
});
afterAll(async () => {
  await processor?.runtime.close();
  await tdb?.close();
});
beforeEach(() => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  sqs.reset();
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [] });
});

const leaseRow = () => tdb.db.selectFrom('leases').select(['holder', 'rerun_requests']).where('name', '=', PROCESSOR_LEASE).executeTakeFirstOrThrow();
const nudge = () => processor.handler({ nudge: true }, lambdaContext(PROCESSOR));

describe('processor lease', () => {
  it('runs one invocation at a time: a second one returns after two calls and the holder runs again for its work', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 21, 'execute: echo leased\n');
    const { instance } = await services.operations.launch({ definitionId: 21, launchedBy: 'test' });
    // The holder's first run queues the command and nudges the notifier before it lets the lease go: there, an
    // agent finishes the command (work made visible while the holder runs) and its nudge starts a second invocation.
    let second: Awaited<ReturnType<typeof nudge>> | undefined;
    lambda.on(InvokeCommand).callsFake(async () => {
      if (second === undefined) {
        second = 'pending' as unknown as typeof second;
        expect(await finishExecutionsAsAgent(tdb.db)).toBe(1);
        second = await nudge();
      }
      return { StatusCode: 202 };
    });
    const first = awake(await nudge());
    const other = awake(second!);
    expect(other).toMatchObject({ passes: 0, committed: 0, heldElsewhere: true });
    // The holder ran again for the request and stepped the finished command: nothing waits for the next tick.
    expect(first).toMatchObject({ heldElsewhere: false, reruns: 1, stoppedBy: 'idle' });
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(await leaseRow()).toEqual({ holder: null, rerun_requests: 0 });
  });

  it('leaves a live lease to its holder and takes over one that lapsed (a crashed holder)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 22, 'execute: echo taken over\n');
    const { instance } = await services.operations.launch({ definitionId: 22, launchedBy: 'test' });
    const queued = () => tdb.db.selectFrom('executions').select('shell').where('job_instance_id', '=', instance.id).execute();
    await tdb.db.updateTable('leases').set({ holder: 'crashed', held_until: new Date(Date.now() + 60_000) }).where('name', '=', PROCESSOR_LEASE).execute();
    const before = tdb.dataApi!.callCount();
    expect(awake(await nudge())).toMatchObject({ passes: 0, heldElsewhere: true });
    // The take, then the rerun request: no pass.
    expect(tdb.dataApi!.callCount() - before).toBe(2);
    expect(await queued()).toEqual([]);
    expect(await leaseRow()).toEqual({ holder: 'crashed', rerun_requests: 1 });
    // The holder died: its lease lapses, and the next invocation (a nudge, or the one-minute tick) takes it over.
    await tdb.db.updateTable('leases').set({ held_until: new Date(Date.now() - 1_000) }).where('name', '=', PROCESSOR_LEASE).execute();
    const run = awake(await nudge());
    expect(run).toMatchObject({ heldElsewhere: false, reruns: 0 });
    expect(run.committed).toBeGreaterThan(0);
    expect(await queued()).toEqual([{ shell: 'echo taken over' }]);
    expect(await leaseRow()).toEqual({ holder: null, rerun_requests: 0 });
  });

  it('ends a scheduled tick with nothing due after one call, without the lease; a tick with work due takes it', async () => {
    // A first tick clears what a fresh container does not know yet (finished commands whose token is gone).
    awake(await processor.handler(scheduledEvent('kuroko-test-ProcessorTick'), lambdaContext(PROCESSOR)));
    await tdb.db.updateTable('leases').set({ holder: 'crashed', held_until: new Date(Date.now() + 60_000) }).where('name', '=', PROCESSOR_LEASE).execute();
    const before = tdb.dataApi!.callCount();
    expect(awake(await processor.handler(scheduledEvent('kuroko-test-ProcessorTick'), lambdaContext(PROCESSOR)))).toMatchObject({ passes: 0, heldElsewhere: false });
    expect(tdb.dataApi!.callCount() - before).toBe(1);
    // No rerun was asked of the holder: there was nothing to run for.
    expect(await leaseRow()).toEqual({ holder: 'crashed', rerun_requests: 0 });
    await tdb.db.updateTable('leases').set({ holder: null, held_until: new Date(0) }).where('name', '=', PROCESSOR_LEASE).execute();
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 24, 'noop:\n');
    const { instance } = await services.operations.launch({ definitionId: 24, launchedBy: 'test' });
    expect(awake(await processor.handler(scheduledEvent('kuroko-test-ProcessorTick'), lambdaContext(PROCESSOR)))).toMatchObject({ heldElsewhere: false, stoppedBy: 'idle' });
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
    expect(await leaseRow()).toEqual({ holder: null, rerun_requests: 0 });
  });

  it('nudges the notifier while the holder\'s run goes on, not only when it ends', async () => {
    // Every pass that committed, here (the default waits a second between nudges, which a test run never lasts).
    const eager = processorFunction(processor.runtime, { notifierNudgeEveryMs: 0 });
    const services = servicesFor(tdb);
    await finishExecutionsAsAgent(tdb.db);
    awake(await nudge());
    await insertDefinition(tdb.db, 23, 'execute: echo one\nexecute: echo two\n');
    const { instance } = await services.operations.launch({ definitionId: 23, launchedBy: 'test' });
    awake(await nudge());
    // The command fails: one pass writes the failure and its event (a step that writes no event nudges no notifier),
    // a second finds nothing, then the lease is let go. The notifier's nudge must not wait for the second pass.
    expect(await finishExecutionsAsAgent(tdb.db, () => 1)).toBe(1);
    let callsAtNudge: number | undefined;
    lambda.on(InvokeCommand).callsFake(() => {
      callsAtNudge ??= tdb.dataApi!.callCount();
      return { StatusCode: 202 };
    });
    const run = await eager(TICK_KIND.nudge, lambdaContext(PROCESSOR));
    const callsAfterNudge = tdb.dataApi!.callCount() - callsAtNudge!;
    expect(run.committed).toBeGreaterThanOrEqual(1);
    expect(await statusOf(tdb.db, instance.id)).toBe('error');
    // More than the release alone (one call) came after it: at least the pass that found nothing (one call: its
    // listing, which reads the due tokens and their executions' widths in one statement).
    expect(callsAfterNudge).toBeGreaterThanOrEqual(2);
  });
});
