import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAwsAgent } from '../../agent/main';
import { silentAgentLogger } from '../../agent/agent';
import { ConfigError } from '../../core/errors';
import { createDatabase, parseDatabaseUrl } from '../../db/connection';
import { createIdGenerator } from '../../db/id-generator';
import { WorkerRepository } from '../../db/repositories/worker-repository';
import type { AgentParameter } from '../../app/config/config-schemas';
import { ENV_KEYS } from '../../app/config/env-keys';
import { insertDefinition, servicesFor, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { DOORBELL, PROCESSOR } from '../functions/function-fixtures';

const ssm = mockClient(SSMClient);
const logs = mockClient(CloudWatchLogsClient);
const lambda = mockClient(LambdaClient);
const ec2 = mockClient(EC2Client);
const sqs = mockClient(SQSClient);
const PARAMETER = '/kuroko/test/workers/at.default/agent-config';
const INSTANCE_ID = 'i-0123456789abcdef0';
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
/** Several idle periods of an agent over the Data API stand-in: generous under load. */
const IDLE_TEST_TIMEOUT_MS = 90_000;

let tdb: TestDatabase;
let parameter: AgentParameter;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  const url = parseDatabaseUrl(tdb.url);
  if (url.dialect !== 'data-api') throw new Error('unreachable');
  parameter = {
    stage: 'test',
    region: 'us-east-1',
    database: { clusterArn: url.resourceArn, secretArn: url.secretArn, databaseName: url.database, endpoint: tdb.dataApi!.endpoint },
    queue: '@default',
    slots: 2,
    idleMinutes: 10,
    executionLogGroupName: '/kuroko/test/executions',
    processorFunctionName: PROCESSOR,
    shutdownWhenIdle: true,
  };
});
afterAll(async () => {
  await tdb?.close();
});
beforeEach(() => {
  for (const mock of [ssm, logs, lambda, ec2, sqs]) mock.reset();
  ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify(parameter) } });
  logs.on(CreateLogStreamCommand).resolves({}).on(PutLogEventsCommand).resolves({});
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  ec2.on(TerminateInstancesCommand).resolves({});
});

/**
 * Points the agent's parameter at a doorbell queue whose every long poll waits until the test rings (or the agent
 * stops): a ring is the only thing that returns one. Answers the pending polls' resolvers, first in first.
 */
function useDoorbell(body: () => string = () => 'ring'): (() => void)[] {
  ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify({ ...parameter, doorbellQueueUrl: DOORBELL, shutdownWhenIdle: false }) } });
  const rings: (() => void)[] = [];
  sqs.on(ReceiveMessageCommand).callsFake(
    () => new Promise((resolve) => rings.push(() => resolve({ Messages: [{ MessageId: 'm', ReceiptHandle: 'h', Body: body() }] }))),
  );
  sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [{ Id: '0' }] });
  return rings;
}

const deps = (shutdown: () => Promise<void>) => ({
  env: { [ENV_KEYS.agentConfigParameter]: PARAMETER, AWS_REGION: 'us-east-1', PATH: process.env.PATH ?? '/usr/bin:/bin' },
  ssm: new SSMClient({ region: 'us-east-1', credentials }),
  logs: new CloudWatchLogsClient({ region: 'us-east-1', credentials }),
  lambda: new LambdaClient({ region: 'us-east-1', credentials }),
  ec2: new EC2Client({ region: 'us-east-1', credentials }),
  instanceId: () => Promise.resolve(INSTANCE_ID),
  signals: { on: () => process, off: () => process } as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
  shutdown,
  idleTimeoutMs: 1_500,
  pollIntervalMs: 100,
  logger: process.env.DEBUG_AGENT ? { info: console.log, warn: console.log, error: console.log } : silentAgentLogger,
});

/**
 * Runs the EC2 agent with only the doorbell to wake it (no poll for 10 minutes), queues one command of definition
 * `definitionId`, rings once with `body(executionId)` and waits for the command to finish; then stops the agent.
 * Answers the statements the agent sent from the ring on.
 */
async function claimAfterOneRing(definitionId: number, body: (executionId: number) => string): Promise<string[]> {
  let executionId = 0;
  const rings = useDoorbell(() => body(executionId));
  const statements: string[] = [];
  const openDatabase = (url: string) => createDatabase(url, { log: (event) => void statements.push(event.query.sql) });
  const services = servicesFor(tdb);
  await insertDefinition(tdb.db, definitionId, `execute: echo ${definitionId}\n`);
  const onSignal: ((signal: NodeJS.Signals) => void)[] = [];
  const signals = { on: (_: string, handler: (signal: NodeJS.Signals) => void) => onSignal.push(handler), off: () => undefined };
  const running = runAwsAgent({
    ...deps(() => Promise.resolve()),
    sqs: new SQSClient({ region: 'us-east-1', credentials }),
    openDatabase,
    pollIntervalMs: 600_000,
    signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
  });
  await waitFor(() => rings.length > 0, { description: 'the first long poll' });
  const { instance } = await services.operations.launch({ definitionId, launchedBy: 'test' });
  while ((await services.processorPass()).committed > 0);
  executionId = Number((await tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance.id).executeTakeFirstOrThrow()).id);
  const fromRing = statements.length;
  rings.shift()!();
  await waitFor(async () => (await tdb.db.selectFrom('executions').select('finished_at').where('job_instance_id', '=', instance.id).executeTakeFirst())?.finished_at, {
    timeoutMs: 20_000,
    description: 'the command to finish',
  });
  const sent = statements.slice(fromRing);
  onSignal[0]!('SIGTERM');
  for (const ring of rings.splice(0)) ring();
  expect(await running).toMatchObject({ exit: 'signal' });
  for (let i = 0; i < 3; i++) await services.processorPass();
  return sent;
}

describe('agent entry on EC2', () => {
  it('runs a command from its SSM configuration, streams output to CloudWatch, nudges the processor, and ends the idle instance', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 1, 'execute: echo hello from ec2\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    while ((await services.processorPass()).committed > 0);
    expect(await tdb.db.selectFrom('executions').select('shell').execute()).toEqual([{ shell: 'echo hello from ec2' }]);

    let shutdowns = 0;
    const running = runAwsAgent(deps(() => {
      shutdowns++;
      return Promise.reject(new Error('Access denied'));
    }));
    // The worker registers with the instance id as hostname (the provisioner ties it to its instance so).
    await waitFor(async () => (await tdb.db.selectFrom('workers').select('hostname').execute()).some((w) => w.hostname === INSTANCE_ID), {
      description: 'the worker row',
    });
    await waitFor(async () => (await tdb.db.selectFrom('executions').select('finished_at').executeTakeFirst())?.finished_at, {
      timeoutMs: 20_000,
      description: 'the command to finish',
    });
    for (let i = 0; i < 3; i++) await services.processorPass();
    expect(await statusOf(tdb.db, instance.id)).toBe('success');

    const result = await running;
    expect(result).toMatchObject({ exit: 'idle', hostname: INSTANCE_ID, ended: 'terminated' });
    expect(shutdowns).toBe(1);
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[INSTANCE_ID]]);
    const output = logs.commandCalls(PutLogEventsCommand).flatMap((c) => c.args[0].input.logEvents ?? []).map((e) => e.message).join('');
    expect(output).toBe('hello from ec2\n');
    expect(lambda.commandCalls(InvokeCommand)[0]!.args[0].input).toMatchObject({ FunctionName: PROCESSOR, InvocationType: 'Event' });
    // A clean idle stop deregisters the worker.
    expect(await tdb.db.selectFrom('workers').selectAll().execute()).toEqual([]);
  });

  it('leaves the instance alone when shutdownWhenIdle is off', async () => {
    ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify({ ...parameter, shutdownWhenIdle: false }) } });
    const result = await runAwsAgent(deps(() => Promise.reject(new Error('must not be called'))));
    expect(result).toMatchObject({ exit: 'idle', ended: undefined });
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  it('stays idle while its queue needs it to keep minInstances, and ends its instance once another live worker keeps the queue', async () => {
    ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify({ ...parameter, minInstances: 1 }) } });
    // A worker of the queue registered before the agent (a lower id) but not heart-beating: lost, so it keeps nothing.
    const keeperHost = 'i-0aaaaaaaaaaaaaaaa';
    const keeper = await new WorkerRepository(tdb.db, createIdGenerator(tdb.db)).register({
      hostname: keeperHost,
      queues: ['@default'],
      slots: 2,
      now: new Date(Date.now() - 10 * 60_000),
    });
    const stays: string[] = [];
    const logger = { ...silentAgentLogger, info: (message: string) => void (message.startsWith('idle, but staying') && stays.push(message)) };
    const running = runAwsAgent({ ...deps(() => Promise.reject(new Error('Access denied'))), logger });
    let settled = false;
    void running.finally(() => (settled = true));
    // Two idle periods pass and the agent is still there: it is the queue's only live worker.
    await waitFor(() => stays.length >= 2, { timeoutMs: 20_000, description: 'two idle checks that keep the worker' });
    expect(settled).toBe(false);
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);

    // The older worker heart-beats again: it keeps the queue's minimum, so this idle agent leaves and ends its instance.
    await tdb.db.updateTable('workers').set({ heartbeat_at: new Date() }).where('id', '=', keeper).execute();
    const result = await running;
    expect(result).toMatchObject({ exit: 'idle', ended: 'terminated' });
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[INSTANCE_ID]]);
    await tdb.db.deleteFrom('workers').where('id', '=', keeper).execute();
  }, IDLE_TEST_TIMEOUT_MS);

  it('with a doorbell queue, long-polls it and claims when it rings (issue 18)', async () => {
    const rings = useDoorbell();
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 2, 'execute: echo rung\n');
    const running = runAwsAgent({ ...deps(() => Promise.resolve()), sqs: new SQSClient({ region: 'us-east-1', credentials }), idleTimeoutMs: 4_000 });
    await waitFor(() => rings.length > 0, { description: 'the first long poll' });
    const receive = sqs.commandCalls(ReceiveMessageCommand)[0]!.args[0].input;
    expect([receive.QueueUrl, receive.WaitTimeSeconds]).toEqual([DOORBELL, 20]);
    const { instance } = await services.operations.launch({ definitionId: 2, launchedBy: 'test' });
    while ((await services.processorPass()).committed > 0);
    rings.shift()!();
    await waitFor(async () => (await tdb.db.selectFrom('executions').select('finished_at').where('job_instance_id', '=', instance.id).executeTakeFirst())?.finished_at, {
      timeoutMs: 20_000,
      description: 'the command to finish',
    });
    expect(sqs.commandCalls(DeleteMessageBatchCommand).map((c) => c.args[0].input.Entries)).toContainEqual([{ Id: '0', ReceiptHandle: 'h' }]);
    for (const ring of rings.splice(0)) ring();
    expect(await running).toMatchObject({ exit: 'idle' });
    for (let i = 0; i < 3; i++) await services.processorPass();
  }, IDLE_TEST_TIMEOUT_MS);

  // The reverse wake-up (issue 18): a finish recorded on EC2 asks Lambda to run the processor at once instead of at
  // its next tick. InvocationType Event: Lambda queues the event and answers at once, the function runs on its own
  // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html); it may run an event more than once
  // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), harmless for a nudge.
  it('invokes the processor asynchronously after finishes are recorded, one invoke in flight however many finish together', async () => {
    ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify({ ...parameter, slots: 4, shutdownWhenIdle: false }) } });
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 3, 'execute: true\n');
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push((await services.operations.launch({ definitionId: 3, launchedBy: 'test' })).instance.id);
    while ((await services.processorPass()).committed > 0);
    const commands = (await tdb.db.selectFrom('executions').select('id').where('job_instance_id', 'in', ids).execute()).map((e) => Number(e.id));
    const finishedNow = async () =>
      (await tdb.db.selectFrom('executions').select('id').where('job_instance_id', 'in', ids).where('finished_at', 'is not', null).execute()).length;
    // Each invoke takes 300 ms: finishes that land meanwhile must wait behind it, not open invokes of their own.
    let inFlight = 0;
    let mostInFlight = 0;
    const finishedAtInvoke: number[] = [];
    lambda.on(InvokeCommand).callsFake(async () => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      finishedAtInvoke.push(await finishedNow());
      await new Promise((resolve) => setTimeout(resolve, 300));
      inFlight--;
      return { StatusCode: 202 };
    });
    const result = await runAwsAgent(deps(() => Promise.resolve()));
    expect(result).toMatchObject({ exit: 'idle', ended: undefined });
    expect(await finishedNow()).toBe(4);

    const invokes = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input);
    expect(invokes.length).toBeGreaterThan(0);
    expect(invokes.length).toBeLessThanOrEqual(4);
    // Each names the commands whose finish it follows (hints the processor reads beside its lease), every one once.
    const named: number[] = [];
    for (const input of invokes) {
      expect(input).toMatchObject({ FunctionName: PROCESSOR, InvocationType: 'Event' });
      const event = JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array)) as { nudge: true; finished: number[] };
      expect(event).toEqual({ nudge: true, finished: expect.any(Array) });
      named.push(...event.finished);
    }
    expect(named.sort()).toEqual(commands.sort());
    expect(mostInFlight).toBe(1);
    // Sent after a finish was written, and the last one after the last finish: the processor reads every result.
    expect(finishedAtInvoke[0]).toBeGreaterThan(0);
    expect(finishedAtInvoke.at(-1)).toBe(4);
    while ((await services.processorPass()).committed > 0);
    for (const id of ids) expect(await statusOf(tdb.db, id)).toBe('success');
  }, IDLE_TEST_TIMEOUT_MS);

  it('claims without the probe read when the doorbell rang (issue 18: one Data API round trip less per step)', async () => {
    const statements = await claimAfterOneRing(4, () => 'ring');
    // No read of whether anything waits before the claim: the claim is one UPDATE (issue 18), its own probe.
    const firstLook = statements.find((text) => /`executions`.* where `claimed_at` is null/.test(text));
    expect(firstLook).toMatch(/^update `executions` set `claimed_at`/);
  }, IDLE_TEST_TIMEOUT_MS);

  it('claims the command a ring names by id: its UPDATE and a read at once, no read by worker after (issue 18)', async () => {
    const statements = await claimAfterOneRing(5, (executionId) => JSON.stringify({ hints: [executionId] }));
    const claims = statements.filter((text) => /`executions`.* where `claimed_at` is null|where `worker_id` = :\d+ and `claimed_at` = /.test(text));
    expect(claims[0]).toMatch(/^update `executions` set `claimed_at`.* and `id` in \(:\d+\)/);
    expect(claims.filter((text) => /^select/.test(text))).toEqual([]);
  }, IDLE_TEST_TIMEOUT_MS);

  it('refuses to start without the parameter name or with an invalid parameter', async () => {
    await expect(runAwsAgent({ ...deps(() => Promise.resolve()), env: {} })).rejects.toBeInstanceOf(ConfigError);
    ssm.on(GetParameterCommand, { Name: PARAMETER }).resolves({ Parameter: { Value: JSON.stringify({ ...parameter, slots: 0 }) } });
    await expect(runAwsAgent(deps(() => Promise.resolve()))).rejects.toThrow(/slots/);
  });
});
