/**
 * `kuroko server` learns of the finishes of a separate agent (issue 18): the agent reaches only the database and
 * never nudges the server, and the server's processor ticks every ten minutes here, so a three-step workflow ends
 * within the test's deadline only because the finish watch (app/finish-watch.ts) wakes the processor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_INTERVALS, startRuntime, type Runtime } from '../../cli/runtime/kuroko-runtime';
import { INSTANCE_STATUS } from '../../core/model';
import type { DatabaseHandle } from '../../db/connection';
import { testAgent, type TestAgent } from '../agent/agent-fixtures';
import { insertDefinition, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

const TEN_MINUTES = 10 * 60_000;
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

let tdb: TestDatabase;
let agentHandle: DatabaseHandle;
let runtime: Runtime | undefined;
let agent: TestAgent | undefined;
const logDir = mkdtempSync(join(tmpdir(), 'kuroko-finish-watch-'));

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  agentHandle = tdb.openAnother();
});
afterAll(async () => {
  await agent?.dispose();
  await runtime?.stop();
  await agentHandle?.close();
  await tdb?.close();
  rmSync(logDir, { recursive: true, force: true });
});

it('steps a workflow run by a separate agent without waiting for the processor tick', async () => {
  runtime = await startRuntime({
    databaseUrl: tdb.url,
    host: '127.0.0.1',
    port: 0,
    agents: 0,
    agentSlots: 1,
    logDir,
    intervals: { ...DEFAULT_INTERVALS, processorMs: TEN_MINUTES, schedulerMs: TEN_MINUTES, monitorMs: TEN_MINUTES },
    declaredQueues: [],
    notification: { slackWebhookUrl: undefined, webhookSecret: undefined, baseUrl: undefined },
    monitor: {},
    consoleNotifications: false,
    logger: quiet,
  });
  // A separate agent: its own connection, a fast fallback poll, and no onExecutionFinished hook into the server.
  agent = testAgent(agentHandle, { pollIntervalMs: 50 });
  await agent.agent.start();
  await insertDefinition(tdb.db, 1, 'execute: echo one\nexecute: echo two\nexecute: echo three\n');
  // The launch nudges the processor once (as the API does); every later pass must come from the finish watch.
  const { instance } = await runtime.services.operations.launch({ definitionId: 1, launchedBy: 'test' });
  await waitFor(async () => (await statusOf(tdb.db, instance.id)) === INSTANCE_STATUS.success, {
    timeoutMs: 20_000,
    description: 'the three steps to run',
  });
  const history = await tdb.db.selectFrom('execution_histories').select('shell').where('job_instance_id', '=', instance.id).orderBy('finished_at').execute();
  expect(history.map((row) => row.shell)).toEqual(['echo one', 'echo two', 'echo three']);
});
