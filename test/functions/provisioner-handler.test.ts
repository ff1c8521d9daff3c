import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INITIAL_SLEEP_VALUE } from '../../adapters/aws/sleep-gate';
import { ExternalServiceError } from '../../core/errors';
import { WorkerRepository } from '../../db/repositories/worker-repository';
import type { WorkerQueueBinding } from '../../app/config/config';
import { ENV_KEYS, WORKER_TAGS } from '../../app/config/env-keys';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import type * as ProvisionerModule from '../../functions/provisioner/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, awake, functionEnv, lambdaContext, scheduledEvent } from './function-fixtures';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const SLEEP_PARAMETER = '/kuroko/test/sleep';
const QUEUE: WorkerQueueBinding = {
  name: '@default',
  launchTemplateId: 'lt-0123456789abcdef0',
  subnetIds: ['subnet-aaaa', 'subnet-bbbb'],
  slotsPerWorker: 2,
  minInstances: 0,
  maxInstances: 3,
  idleMinutes: 10,
};

let tdb: TestDatabase;
let provisioner: typeof ProvisionerModule;
const tick = async () => awake(await provisioner.handler(scheduledEvent('kuroko-test-ProvisionerTick'), lambdaContext('kuroko-test-provisioner')));
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);
const describing = (instances: { id: string; launched: Date; state?: string }[]) =>
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      { Instances: instances.map((i) => ({ InstanceId: i.id, LaunchTime: i.launched, State: { Name: (i.state ?? 'running') as 'running' } })) },
    ],
  });

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  applyEnv(functionEnv(tdb, { [ENV_KEYS.workerQueues]: JSON.stringify([QUEUE]), [ENV_KEYS.sleepParameter]: SLEEP_PARAMETER }));
  provisioner = await import('../../functions/provisioner/handler');
  // Three commands wait in the default queue: two workers' worth at two slots each.
  const services = servicesFor(tdb);
  await insertDefinition(tdb.db, 1, 'fork:\n  execute: a\n  execute: b\n  execute: c\n');
  await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
  for (let i = 0; i < 4; i++) await services.processorPass();
  const waiting = await tdb.db.selectFrom('executions').select('id').where('claimed_at', 'is', null).execute();
  expect(waiting).toHaveLength(3);
});
afterAll(async () => {
  await provisioner?.runtime.close();
  await tdb?.close();
});
beforeEach(async () => {
  ec2.reset();
  ssm.reset();
  ssm.on(GetParameterCommand).resolves({ Parameter: { Value: INITIAL_SLEEP_VALUE } });
  ec2.on(RunInstancesCommand).callsFake((input: { MaxCount: number }) => ({
    Instances: Array.from({ length: input.MaxCount }, (_, n) => ({ InstanceId: `i-0new${n}0000000000` })),
  }));
  ec2.on(TerminateInstancesCommand).resolves({});
  await tdb.db.deleteFrom('workers').execute();
});

describe('provisioner handler', () => {
  it('launches tagged instances from the launch template for the waiting executions', async () => {
    describing([]);
    const result = await tick();
    const runs = ec2.commandCalls(RunInstancesCommand);
    expect(runs).toHaveLength(1);
    const input = runs[0]!.args[0].input;
    expect(input).toMatchObject({
      LaunchTemplate: { LaunchTemplateId: QUEUE.launchTemplateId, Version: '$Latest' },
      MinCount: 1,
      MaxCount: 2,
      SubnetId: 'subnet-aaaa',
    });
    expect(input.TagSpecifications?.[0]).toMatchObject({
      ResourceType: 'instance',
      Tags: expect.arrayContaining([
        { Key: WORKER_TAGS.managed, Value: 'true' },
        { Key: WORKER_TAGS.queue, Value: '@default' },
        { Key: WORKER_TAGS.stage, Value: 'test' },
      ]),
    });
    const filters = ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input.Filters;
    expect(filters).toEqual(
      expect.arrayContaining([
        { Name: `tag:${WORKER_TAGS.queue}`, Values: ['@default'] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ]),
    );
    expect(result.queues[0]).toMatchObject({ queue: '@default', launched: ['i-0new00000000000', 'i-0new10000000000'], terminated: [] });
  });

  it('counts booting instances and launches nothing more while they boot', async () => {
    describing([
      { id: 'i-0c00000000000001', launched: minutesAgo(2), state: 'pending' },
      { id: 'i-0c00000000000002', launched: minutesAgo(2), state: 'pending' },
    ]);
    await tick();
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  it('replaces an instance whose agent never registered, and keeps one whose agent did (instance id as hostname)', async () => {
    const workers = new WorkerRepository(tdb.db, tdb.idGenerator);
    await workers.register({ hostname: 'i-0a00000000000001', queues: ['@default'], slots: 2, now: new Date() });
    describing([
      { id: 'i-0a00000000000001', launched: minutesAgo(30) },
      { id: 'i-0a00000000000002', launched: minutesAgo(30) },
    ]);
    const result = await tick();
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([['i-0a00000000000002']]);
    // Three waiting, two free slots on the registered worker: one more instance.
    expect(ec2.commandCalls(RunInstancesCommand).map((c) => c.args[0].input.MaxCount)).toEqual([1]);
    expect(result.queues[0]!.plan.reasons.join('\n')).toContain('no agent registered');
  });

  it('terminates the instance of a lost idle worker but never one whose worker is suspended', async () => {
    const workers = new WorkerRepository(tdb.db, tdb.idGenerator);
    await workers.register({ hostname: 'i-0b00000000000001', queues: ['@default'], slots: 2, now: minutesAgo(10) });
    const suspendedId = await workers.register({ hostname: 'i-0b00000000000002', queues: ['@default'], slots: 2, now: minutesAgo(10) });
    await tdb.db.updateTable('workers').set({ suspended: true }).where('id', '=', suspendedId).execute();
    describing([
      { id: 'i-0b00000000000001', launched: minutesAgo(60) },
      { id: 'i-0b00000000000002', launched: minutesAgo(60) },
    ]);
    await tick();
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([['i-0b00000000000001']]);
  });

  it('while the engine sleeps, looks only at EC2, and runs the pass when an instance is still there', async () => {
    const until = new Date(Date.now() + 30 * 60_000).toISOString();
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify({ state: 'asleep', until }) } });
    const sleepingTick = () => provisioner.handler(scheduledEvent('kuroko-test-ProvisionerTick'), lambdaContext('kuroko-test-provisioner'));
    describing([]);
    tdb.dataApi!.resetCounts();
    expect(await sleepingTick()).toEqual({ asleepUntil: until });
    expect(tdb.dataApi!.callCount()).toBe(0);
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(1);

    // An instance whose agent never registered would otherwise run until the sleep ends.
    describing([{ id: 'i-0d00000000000001', launched: minutesAgo(30) }]);
    const result = await sleepingTick();
    expect(result).toMatchObject({ queues: [{ queue: '@default', terminated: ['i-0d00000000000001'] }] });
    expect(tdb.dataApi!.callCount()).toBeGreaterThan(0);
  });

  it('fails the invocation with an ExternalServiceError when EC2 refuses', async () => {
    ec2.on(DescribeInstancesCommand).rejects(Object.assign(new Error('You are not authorized'), { name: 'UnauthorizedOperation', $fault: 'client' }));
    const error = await tick().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as Error).message).toContain('@default: ec2: DescribeInstances failed (UnauthorizedOperation)');
  });
});
