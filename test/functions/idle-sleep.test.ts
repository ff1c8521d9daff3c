/**
 * Idle sleep across the functions as AWS runs them: the scheduler publishes a sleep in the SSM parameter when
 * nothing is in flight, the ticks then make no Data API call at all, and an API write ends it. SSM has
 * no local stand-in, so its client is mocked at the SDK boundary with a parameter that keeps what is written.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INITIAL_SLEEP_VALUE, parseSleepValue } from '../../adapters/aws/sleep-gate';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { ENV_KEYS } from '../../app/config/env-keys';
import { ensureApiClients } from '../../http/api/http-auth';
import type * as ApiModule from '../../functions/api/handler';
import type * as MonitorModule from '../../functions/monitor/handler';
import type * as NotifierModule from '../../functions/notifier/handler';
import type * as ProcessorModule from '../../functions/processor/handler';
import type * as SchedulerModule from '../../functions/scheduler/handler';
import { basicAuth } from '../api/api-fixtures';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, functionEnv, httpApiEvent, lambdaContext, scheduledEvent } from './function-fixtures';

const PARAMETER = '/kuroko/test/sleep';
const CLIENT = { name: 'launcher', secret: 'launch-secret-0001' };
const lambda = mockClient(LambdaClient);
const ssm = mockClient(SSMClient);

let tdb: TestDatabase;
let api: typeof ApiModule;
let scheduler: typeof SchedulerModule;
let processor: typeof ProcessorModule;
let monitor: typeof MonitorModule;
let notifier: typeof NotifierModule;
/** The parameter's value as SSM would hold it; `onPut` runs after each write. */
let parameter = INITIAL_SLEEP_VALUE;
let onPut: (value: string) => Promise<void> = () => Promise.resolve();
let failReads = false;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  const services = servicesFor(tdb);
  await ensureApiClients(new ApiClientRepository(tdb.db, services.ids, services.clock), `${CLIENT.name}:${CLIENT.secret}:launch`);
  applyEnv(
    functionEnv(tdb, {
      [ENV_KEYS.sleepParameter]: PARAMETER,
      [ENV_KEYS.processorFunction]: 'kuroko-test-processor',
      [ENV_KEYS.notifierFunction]: 'kuroko-test-notifier',
      [ENV_KEYS.alertTopicArn]: 'arn:aws:sns:us-east-1:123456789012:kuroko-test-alerts',
      [ENV_KEYS.metricsNamespace]: 'KurokoTest',
    }),
  );
  [api, scheduler, processor, monitor, notifier] = await Promise.all([
    import('../../functions/api/handler'),
    import('../../functions/scheduler/handler'),
    import('../../functions/processor/handler'),
    import('../../functions/monitor/handler'),
    import('../../functions/notifier/handler'),
  ]);
});
afterAll(async () => {
  await Promise.all([scheduler?.runtime.close(), processor?.runtime.close(), monitor?.runtime.close(), notifier?.runtime.close()]);
  await tdb?.close();
});
beforeEach(async () => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  ssm.reset();
  parameter = INITIAL_SLEEP_VALUE;
  onPut = () => Promise.resolve();
  failReads = false;
  ssm.on(GetParameterCommand, { Name: PARAMETER }).callsFake(() => {
    if (failReads) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    return { Parameter: { Name: PARAMETER, Value: parameter } };
  });
  ssm.on(PutParameterCommand, { Name: PARAMETER }).callsFake(async (input: { Value: string }) => {
    parameter = input.Value;
    await onPut(input.Value);
    return { Version: 2 };
  });
  await forgetWork();
  for (const table of ['job_schedules', 'job_definitions'] as const) await tdb.db.deleteFrom(table).execute();
});

/** Back to idle: nothing in flight. */
async function forgetWork() {
  for (const table of ['tokens', 'executions', 'job_instances', 'events'] as const) await tdb.db.deleteFrom(table).execute();
}

const tick = (name: string) => scheduledEvent(`kuroko-test-${name}Tick`, new Date().toISOString());
const runScheduler = () => scheduler.handler(tick('Scheduler'), lambdaContext('kuroko-test-scheduler'));
const asleepUntil = () => parseSleepValue(parameter);
const launchThroughApi = (definitionId: number) =>
  api.handler(
    httpApiEvent('POST', `/v1/definitions/${definitionId}/instances`, {
      headers: { authorization: basicAuth(CLIENT.name, CLIENT.secret), 'content-type': 'application/json' },
      body: '{}',
    }) as never,
    lambdaContext('kuroko-test-api') as never,
  ) as Promise<APIGatewayProxyResult>;

describe('idle sleep', () => {
  it('sleeps when nothing is in flight, and the ticks then make no Data API call', async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n', { crons: ['0 0 1 1 *'] });
    const before = Date.now();
    const result = await runScheduler();
    expect(result).toMatchObject({ launched: 0, sleep: { asleepUntil: expect.any(String) } });
    const until = asleepUntil()!;
    // No cap by default: asleep until three minutes (the wake lead) before the yearly cron's next slot, months away.
    const nextSlot = Date.UTC(new Date(before).getUTCFullYear() + 1, 0, 1);
    expect(until.toISOString()).toBe(new Date(nextSlot - 3 * 60_000).toISOString());

    tdb.dataApi!.resetCounts();
    const results = [
      await runScheduler(),
      await processor.handler(tick('Processor'), lambdaContext('kuroko-test-processor')),
      await monitor.handler(tick('Monitor'), lambdaContext('kuroko-test-monitor')),
      await notifier.handler(tick('Notifier'), lambdaContext('kuroko-test-notifier')),
    ];
    expect(results).toEqual(results.map(() => ({ asleepUntil: until.toISOString() })));
    expect(tdb.dataApi!.callCount()).toBe(0);
  });

  it('stays awake while an instance is in flight, naming why', async () => {
    await insertDefinition(tdb.db, 2, 'execute: sleep 1\n');
    await servicesFor(tdb).operations.launch({ definitionId: 2, launchedBy: 'test' });
    const result = await runScheduler();
    expect(result).toMatchObject({ sleep: { awake: expect.arrayContaining(['1 tokens']) } });
    expect(parameter).toBe(INITIAL_SLEEP_VALUE);
  });

  it('takes the sleep back when work is committed while it is being published', async () => {
    await insertDefinition(tdb.db, 3, 'noop:\n');
    // A launch commits between the scheduler's first look and its write of the sleep (the API's wake read the
    // parameter before the sleep was written, so it found nothing to end).
    onPut = async (value) => {
      if (parseSleepValue(value) === undefined) return;
      onPut = () => Promise.resolve();
      await servicesFor(tdb).operations.launch({ definitionId: 3, launchedBy: 'test' });
    };
    const result = await runScheduler();
    expect(result).toMatchObject({ sleep: { awake: expect.arrayContaining(['1 tokens']) } });
    expect(asleepUntil()).toBeUndefined();
    expect(JSON.parse(parameter)).toMatchObject({ state: 'awake', reason: 'work arrived while going to sleep' });
  });

  it('ends the sleep on an API write, so the next ticks run', async () => {
    await insertDefinition(tdb.db, 4, 'noop:\n');
    await runScheduler();
    expect(asleepUntil()).toBeDefined();
    const response = await launchThroughApi(4);
    expect(response.statusCode).toBe(201);
    expect(JSON.parse(parameter)).toMatchObject({ state: 'awake', reason: 'api POST' });
    const next = await processor.handler(tick('Processor'), lambdaContext('kuroko-test-processor'));
    expect(next).toMatchObject({ committed: expect.any(Number) });
  });

  it('does not write the parameter for reads, for writes while awake, or when it cannot read it', async () => {
    await insertDefinition(tdb.db, 5, 'noop:\n');
    await launchThroughApi(5);
    await api.handler(
      httpApiEvent('GET', '/v1/definitions/5', { headers: { authorization: basicAuth(CLIENT.name, CLIENT.secret) } }) as never,
      lambdaContext('kuroko-test-api') as never,
    );
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
    await forgetWork();
    await runScheduler();
    expect(asleepUntil()).toBeDefined();
    ssm.resetHistory();
    failReads = true;
    expect((await launchThroughApi(5)).statusCode).toBe(201);
    expect(ssm.commandCalls(GetParameterCommand)).not.toHaveLength(0);
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(0);
  });

  it('runs a nudged pass while asleep without touching the parameter, and acts awake when it cannot be read', async () => {
    await runScheduler();
    const until = asleepUntil();
    expect(until).toBeDefined();
    ssm.resetHistory();
    const nudged = await processor.handler({ nudge: true }, lambdaContext('kuroko-test-processor'));
    expect(nudged).toMatchObject({ passes: 1 });
    expect(ssm.calls()).toHaveLength(0);
    expect(asleepUntil()).toEqual(until);

    failReads = true;
    tdb.dataApi!.resetCounts();
    const result = await monitor.handler(tick('Monitor'), lambdaContext('kuroko-test-monitor'));
    expect(result).toMatchObject({ totalRaised: 0 });
    expect(tdb.dataApi!.callCount()).toBeGreaterThan(0);
  });
});
