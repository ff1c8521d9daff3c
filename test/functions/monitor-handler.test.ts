import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, ValidationError } from '../../core/errors';
import type { EventType } from '../../core/model';
import { MONITOR_ENV_KEYS } from '../../app/config/env-keys';
import { fromDbTime } from '../../db/column-codec';
import { parseMonitorConfig } from '../../app/config/config';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as MonitorModule from '../../functions/monitor/handler';
import type * as ProcessorModule from '../../functions/processor/handler';
import { insertDefinition, servicesFor, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, awake, functionEnv, lambdaContext, NOTIFIER, PROCESSOR, scheduledEvent } from './function-fixtures';

const MONITOR = 'kuroko-test-monitor';
const MINUTE_MS = 60_000;
const lambda = mockClient(LambdaClient);

let tdb: TestDatabase;
let monitor: typeof MonitorModule;
let processor: typeof ProcessorModule;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  applyEnv(
    functionEnv(tdb, {
      [ENV_KEYS.notifierFunction]: NOTIFIER,
      [ENV_KEYS.processorFunction]: PROCESSOR,
      // The defaults, spelled out: the rows below are dated far enough in the past to cross them.
      [MONITOR_ENV_KEYS.assignmentDelaySeconds]: '300',
      [MONITOR_ENV_KEYS.workerLostSeconds]: '120',
    }),
  );
  monitor = await import('../../functions/monitor/handler');
  processor = await import('../../functions/processor/handler');
});
afterAll(async () => {
  await monitor?.runtime.close();
  await processor?.runtime.close();
  await tdb?.close();
});
beforeEach(() => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
});

const invoked = () =>
  lambda.commandCalls(InvokeCommand).map((c) => ({
    name: c.args[0].input.FunctionName,
    type: c.args[0].input.InvocationType,
    payload: JSON.parse(new TextDecoder().decode(c.args[0].input.Payload as Uint8Array)) as unknown,
  }));

const eventsOf = async (type: EventType) =>
  tdb.db.selectFrom('events').select(['type', 'job_instance_id', 'job_definition_id', 'message']).where('type', '=', type).execute();

/** Launches `execute: <shell>` and runs the processor until its execution row exists; answers both ids. */
async function launchCommand(definitionId: number, shell: string): Promise<{ instanceId: number; executionId: number }> {
  const services = servicesFor(tdb);
  await insertDefinition(tdb.db, definitionId, `execute: ${shell}\n`);
  const { instance } = await services.operations.launch({ definitionId, launchedBy: 'test' });
  // The token reaches the execute node in a pass or two; passes stop moving once it waits for an agent.
  while ((await services.processorPass()).committed > 0);
  const execution = await tdb.db
    .selectFrom('executions')
    .select('id')
    .where('job_instance_id', '=', instance.id)
    .executeTakeFirstOrThrow();
  return { instanceId: instance.id, executionId: Number(execution.id) };
}

describe('monitor handler', () => {
  it('announces an execution nobody claimed exactly once, however often it ticks, and nudges the notifier', async () => {
    const { instanceId, executionId } = await launchCommand(1, 'echo waiting');
    // Nothing is old enough yet: a tick raises nothing and nudges nobody.
    const quiet = awake(await monitor.handler(scheduledEvent('kuroko-test-MonitorTick'), lambdaContext(MONITOR)));
    expect(quiet.totalRaised).toBe(0);
    expect(invoked()).toEqual([]);

    await tdb.db
      .updateTable('executions')
      .set({ created_at: new Date(Date.now() - 10 * MINUTE_MS) })
      .where('id', '=', executionId)
      .execute();
    const first = awake(await monitor.handler(scheduledEvent('kuroko-test-MonitorTick'), lambdaContext(MONITOR)));
    expect(first.raised.not_assigned).toBe(1);
    expect(first.lostExecutions).toBe(0);
    expect(invoked()).toEqual([{ name: NOTIFIER, type: 'Event', payload: { nudge: true } }]);

    lambda.resetHistory();
    const second = awake(await monitor.handler(scheduledEvent('kuroko-test-MonitorTick', '2026-03-01T12:01:00Z'), lambdaContext(MONITOR)));
    expect(second.totalRaised).toBe(0);
    expect(invoked()).toEqual([]);

    const events = await eventsOf('not_assigned');
    expect(events).toHaveLength(1);
    expect(Number(events[0]!.job_instance_id)).toBe(instanceId);
    expect(Number(events[0]!.job_definition_id)).toBe(1);
    // Announced only: the execution stays for a worker to pick up.
    const execution = await tdb.db.selectFrom('executions').select('finished_at').where('id', '=', executionId).executeTakeFirstOrThrow();
    expect(execution.finished_at).toBeNull();
  });

  it('finishes the executions of a lost worker, nudges the processor and the notifier, and the token then fails', async () => {
    const { instanceId, executionId } = await launchCommand(2, 'sleep 600');
    const heartbeat = new Date(Date.now() - 10 * MINUTE_MS);
    const workerId = 990_001;
    await tdb.db
      .insertInto('workers')
      .values({
        id: workerId,
        hostname: 'gone-host',
        queues: '["@default"]',
        slots: 2,
        pids: JSON.stringify({ [executionId]: 4242 }),
        heartbeat_at: heartbeat,
        started_at: new Date(heartbeat.getTime() - MINUTE_MS),
        suspended: false,
        draining: false,
        version: 0,
      })
      .execute();
    await tdb.db
      .updateTable('executions')
      .set({ worker_id: workerId, hostname: 'gone-host', claimed_at: heartbeat, started_at: heartbeat, pid: 4242, attempt: 1 })
      .where('id', '=', executionId)
      .execute();

    const result = awake(await monitor.handler(scheduledEvent('kuroko-test-MonitorTick'), lambdaContext(MONITOR)));
    expect(result.raised.worker_lost).toBe(1);
    expect(result.lostExecutions).toBe(1);
    expect(invoked().map((c) => c.name).sort()).toEqual([NOTIFIER, PROCESSOR].sort());

    const execution = await tdb.db
      .selectFrom('executions')
      .select(['finished_at', 'exit_status', 'lost_reason'])
      .where('id', '=', executionId)
      .executeTakeFirstOrThrow();
    expect(execution.finished_at).not.toBeNull();
    expect(fromDbTime(execution.finished_at!).getTime()).toBeGreaterThan(heartbeat.getTime());
    expect(execution.exit_status).toBeNull();
    expect(execution.lost_reason).toContain('gone-host');
    expect(await eventsOf('worker_lost')).toHaveLength(1);

    // What the nudge starts: the processor reads the lost execution and fails the token.
    await processor.handler({ nudge: true }, lambdaContext(PROCESSOR));
    expect(await statusOf(tdb.db, instanceId)).toBe('error');

    lambda.resetHistory();
    const again = awake(await monitor.handler(scheduledEvent('kuroko-test-MonitorTick'), lambdaContext(MONITOR)));
    expect(again.raised.worker_lost).toBe(0);
    expect(invoked()).toEqual([]);
  });

  it('rejects an event that is neither a tick nor a nudge', async () => {
    await expect(monitor.handler({ source: 'aws.s3' }, lambdaContext(MONITOR))).rejects.toBeInstanceOf(ValidationError);
  });

  it('reads both nudge targets from the environment the CDK app sets', () => {
    const env = functionEnv(tdb, { [ENV_KEYS.processorFunction]: PROCESSOR, [ENV_KEYS.notifierFunction]: NOTIFIER });
    expect(parseMonitorConfig(env)).toMatchObject({ processorFunctionName: PROCESSOR, notifierFunctionName: NOTIFIER });
    expect(parseMonitorConfig(functionEnv(tdb))).toMatchObject({ processorFunctionName: undefined, notifierFunctionName: undefined });
    expect(() => parseMonitorConfig({ ...env, [ENV_KEYS.stage]: '' })).toThrow(ConfigError);
  });
});
