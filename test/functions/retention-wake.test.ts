/**
 * Issue 17: the daily retention pass rides on a wake the engine has anyway. The retention function, at its hour,
 * leaves the pass to the next wake when the engine is asleep until a wake within a day (no Data API call, so Aurora
 * stays paused); the scheduler nudges it when it next puts the engine to sleep and a pass is owed. SSM and Lambda
 * are mocked at the SDK boundary (no local stand-in); the database is the local Data API server.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INITIAL_SLEEP_VALUE, SLEEP_STATE } from '../../adapters/aws/sleep-gate';
import { ENV_KEYS } from '../../app/config/env-keys';
import { RETENTION_STATE_NAME } from '../../db/repositories/retention-repository';
import type * as RetentionModule from '../../functions/retention/handler';
import type * as SchedulerModule from '../../functions/scheduler/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, functionEnv, lambdaContext, scheduledEvent } from './function-fixtures';

const PARAMETER = '/kuroko/test/sleep';
const RETENTION_FUNCTION = 'kuroko-test-retention';
const HOUR_MS = 3_600_000;
const lambda = mockClient(LambdaClient);
const ssm = mockClient(SSMClient);
let tdb: TestDatabase;
let retention: typeof RetentionModule;
let scheduler: typeof SchedulerModule;
let parameter = INITIAL_SLEEP_VALUE;

const asleepFor = (ms: number) => JSON.stringify({ state: SLEEP_STATE.asleep, until: new Date(Date.now() + ms).toISOString() });
const lastStart = async () =>
  (await tdb.db.selectFrom('scheduler_state').select('last_pass_at').where('name', '=', RETENTION_STATE_NAME).executeTakeFirst())?.last_pass_at;
const runRetention = (event: unknown) => retention.handler(event, lambdaContext(RETENTION_FUNCTION, () => 15 * 60_000)) as Promise<Record<string, unknown>>;
const retentionInvokes = () => lambda.commandCalls(InvokeCommand).filter((c) => c.args[0].input.FunctionName === RETENTION_FUNCTION);

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  applyEnv(
    functionEnv(tdb, {
      [ENV_KEYS.sleepParameter]: PARAMETER,
      [ENV_KEYS.retentionFunction]: RETENTION_FUNCTION,
      [ENV_KEYS.retentionHourUtc]: '4',
    }),
  );
  [retention, scheduler] = await Promise.all([import('../../functions/retention/handler'), import('../../functions/scheduler/handler')]);
});
afterAll(async () => {
  for (const key of [ENV_KEYS.sleepParameter, ENV_KEYS.retentionFunction, ENV_KEYS.retentionHourUtc]) delete process.env[key];
  await Promise.all([retention?.runtime.close(), scheduler?.runtime.close()]);
  await tdb?.close();
});
beforeEach(async () => {
  await tdb.db.deleteFrom('scheduler_state').where('name', '=', RETENTION_STATE_NAME).execute();
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  ssm.reset();
  parameter = INITIAL_SLEEP_VALUE;
  ssm.on(GetParameterCommand, { Name: PARAMETER }).callsFake(() => ({ Parameter: { Name: PARAMETER, Value: parameter } }));
  ssm.on(PutParameterCommand, { Name: PARAMETER }).callsFake((input: { Value: string }) => {
    parameter = input.Value;
    return { Version: 2 };
  });
});

describe('retention function at its hour', () => {
  it('leaves the pass to a wake within a day, without a single Data API call', async () => {
    parameter = asleepFor(23 * HOUR_MS);
    const calls = tdb.dataApi!.callCount();
    const result = await runRetention(scheduledEvent('kuroko-test-RetentionSchedule'));
    expect(result).toHaveProperty('deferredUntil');
    expect(tdb.dataApi!.callCount()).toBe(calls);
    expect(await lastStart()).toBeUndefined();
  });

  it('runs when the engine is awake, when its sleep lasts more than a day, and when nudged', async () => {
    for (const [value, event] of [
      [INITIAL_SLEEP_VALUE, scheduledEvent('kuroko-test-RetentionSchedule')],
      [asleepFor(25 * HOUR_MS), scheduledEvent('kuroko-test-RetentionSchedule')],
      [asleepFor(HOUR_MS), { nudge: true }],
    ] as const) {
      await tdb.db.deleteFrom('scheduler_state').where('name', '=', RETENTION_STATE_NAME).execute();
      parameter = value;
      expect(await runRetention(event)).toMatchObject({ stoppedEarly: false });
      expect(await lastStart()).toBeDefined();
    }
  });
});

describe('scheduler putting an idle engine to sleep', () => {
  it('nudges the retention function when a pass is owed, and not again once one started', async () => {
    const first = await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick'), lambdaContext('kuroko-test-scheduler'));
    expect(first).toMatchObject({ sleep: { asleepUntil: expect.any(String) } });
    expect(retentionInvokes()).toHaveLength(1);
    expect(retentionInvokes()[0]?.args[0].input.InvocationType).toBe('Event');

    // The nudged pass started (it records its start before deleting anything).
    await runRetention({ nudge: true });
    parameter = INITIAL_SLEEP_VALUE;
    lambda.resetHistory();
    await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick'), lambdaContext('kuroko-test-scheduler'));
    expect(retentionInvokes()).toHaveLength(0);
  });
});
