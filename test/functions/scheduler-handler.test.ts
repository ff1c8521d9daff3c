import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors';
import { fromDbTime } from '../../db/column-codec';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as SchedulerModule from '../../functions/scheduler/handler';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { applyEnv, awake, functionEnv, lambdaContext, PROCESSOR, scheduledEvent } from './function-fixtures';

const SCHEDULER = 'kuroko-test-scheduler';
const MINUTE_MS = 60_000;
/** The scheduler_state row holding the scheduler's mark (db/repositories/schedule-repository.ts). */
const SCHEDULER_STATE = 'scheduler';
/** The ticks of one test must fall in one wall-clock minute: start them only this many seconds into it, at most. */
const LATEST_START_SECOND = 45;
const lambda = mockClient(LambdaClient);

let tdb: TestDatabase;
let scheduler: typeof SchedulerModule;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  applyEnv(functionEnv(tdb, { [ENV_KEYS.processorFunction]: PROCESSOR }));
  scheduler = await import('../../functions/scheduler/handler');
});
afterAll(async () => {
  await scheduler?.runtime.close();
  await tdb?.close();
});
beforeEach(() => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
});

const invoked = () => lambda.commandCalls(InvokeCommand).map((c) => ({ name: c.args[0].input.FunctionName, type: c.args[0].input.InvocationType }));
const tick = async (time?: string) => awake(await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick', time), lambdaContext(SCHEDULER)));
const instancesOf = (definitionId: number) =>
  tdb.db.selectFrom('job_instances').select(['id', 'launched_by']).where('job_definition_id', '=', definitionId).execute();

describe('scheduler handler', () => {
  it('launches a due cron slot on a tick, nudges the processor, and launches nothing more in the same minute', async () => {
    // The handler reads the wall clock: a minute boundary between the ticks would make a new slot due.
    await waitFor(() => new Date().getUTCSeconds() <= LATEST_START_SECOND, {
      timeoutMs: MINUTE_MS,
      intervalMs: 200,
      description: 'a tick early enough in the minute',
    });
    await insertDefinition(tdb.db, 1, 'noop:\n', { crons: ['* * * * *'], createdAt: new Date(Date.now() - 10 * MINUTE_MS) });
    // A suspended definition's slots are recorded, never launched.
    await insertDefinition(tdb.db, 2, 'noop:\n', { crons: ['* * * * *'], suspended: true, createdAt: new Date(Date.now() - 10 * MINUTE_MS) });

    // The first pass ever looks back one minute: an every-minute cron always has exactly one slot in it.
    const first = await tick();
    expect(first.launched).toBe(1);
    expect(invoked()).toEqual([{ name: PROCESSOR, type: 'Event' }]);
    const launched = await instancesOf(1);
    expect(launched).toHaveLength(1);
    expect(await instancesOf(2)).toEqual([]);
    const slots = await tdb.db
      .selectFrom('schedule_slots')
      .select(['job_definition_id', 'outcome', 'job_instance_id', 'scheduled_at'])
      .where('job_definition_id', '=', 1)
      .execute();
    expect(slots).toHaveLength(1);
    expect(slots[0]).toMatchObject({ outcome: 'launched' });
    expect(Number(slots[0]!.job_instance_id)).toBe(Number(launched[0]!.id));
    expect(fromDbTime(slots[0]!.scheduled_at).getUTCSeconds()).toBe(0);

    lambda.resetHistory();
    const second = await tick();
    expect(second).toEqual({ launched: 0, missed: 0, skipped: 0, duplicates: 0 });
    expect(invoked()).toEqual([]);
    expect(await instancesOf(1)).toHaveLength(1);
  });

  it('launches a slot at most once when a second scheduler covers the same window', async () => {
    await waitFor(() => new Date().getUTCSeconds() <= LATEST_START_SECOND, { timeoutMs: MINUTE_MS, intervalMs: 200 });
    await insertDefinition(tdb.db, 3, 'noop:\n', { crons: ['* * * * *'], createdAt: new Date(Date.now() - 10 * MINUTE_MS) });
    // Put the scheduler's mark one minute back (so this minute's slot is in the window) and the schedule's next fire
    // time back to unknown, and tick twice over that same window, as two overlapping invocations would read it.
    const rewound = new Date(Date.now() - MINUTE_MS);
    const rewind = async () => {
      await tdb.db.updateTable('scheduler_state').set({ last_pass_at: rewound }).where('name', '=', SCHEDULER_STATE).execute();
      await tdb.db.updateTable('job_schedules').set({ next_fire_at: null }).where('job_definition_id', '=', 3).execute();
    };
    await rewind();
    await tick();
    expect(await instancesOf(3)).toHaveLength(1);
    await rewind();
    const replay = await tick();
    expect(replay.launched).toBe(0);
    expect(replay.duplicates).toBeGreaterThanOrEqual(1);
    expect(await instancesOf(3)).toHaveLength(1);
  });

  it('rejects an event that is neither a tick nor a nudge', async () => {
    await expect(scheduler.handler({ 'detail-type': 'Scheduled Event' }, lambdaContext(SCHEDULER))).rejects.toBeInstanceOf(ValidationError);
    expect(invoked()).toEqual([]);
  });
});
