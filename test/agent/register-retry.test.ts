/**
 * An agent that starts while the database fails for now (a dropped, throttled or failed Data API call, the
 * database unreachable) keeps trying to register instead of exiting: chaos scenario 3 once lost both its agents
 * so, and nothing ran for the rest of the scenario. An error that is not transient (a refused grant) still fails
 * the start at once. Data API stand-in; the fault is the stand-in's answer to the registration's INSERT.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAgentCommand } from '../../cli/agent-command';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, testAgent } from './agent-fixtures';

let tdb: TestDatabase;
let handle: DatabaseHandle;
/** Holds or fails a Data API call before it runs (set by a test). */
let gate: ((call: { operation: string; sql?: string; parameters?: readonly { value?: Record<string, unknown> }[] }) => Promise<void>) | undefined;
/** Drops the answer of a call that ran (set by a test). */
let loseAnswer: ((call: { operation: string; sql?: string }) => boolean) | undefined;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', {
    dataApi: { gate: (call) => gate?.(call) ?? Promise.resolve(), loseAnswer: (call) => loseAnswer?.(call) ?? false },
  });
  handle = createDatabase(tdb.url);
});
afterAll(async () => {
  await handle?.close();
  await tdb?.close();
});

const registration = (call: { sql?: string }) => /^insert into `workers`/.test(call.sql ?? '');

it('registers once the database answers again: two failed registrations (500s) do not end its start', async () => {
  let failed = 0;
  gate = async (call) => {
    if (!registration(call) || failed >= 2) return;
    failed++;
    throw new Error('injected: the service failed this call');
  };
  const t = testAgent(handle, { hostname: 'blip-agent' });
  try {
    await t.agent.start();
    expect(failed).toBe(2);
    expect(t.agent.workerId).toBeDefined();
    const rows = await tdb.db.selectFrom('workers').select('id').where('hostname', '=', 'blip-agent').execute();
    expect(rows.map((r) => Number(r.id))).toEqual([t.agent.workerId]);
  } finally {
    gate = undefined;
    await t.dispose();
  }
});

it('adopts the row of a registration whose answer was lost instead of leaving a second one behind', async () => {
  // The INSERT commits and its answer never arrives (a Data API call that timed out). Before, the retry registered
  // under a new id, and the first row, never beating, was reported as a lost worker by the monitor.
  let inserts = 0;
  loseAnswer = (call) => registration(call) && inserts++ === 0;
  const t = testAgent(handle, { hostname: 'lost-answer-agent' });
  try {
    await t.agent.start();
    expect(inserts).toBe(1);
    const rows = await tdb.db.selectFrom('workers').select('id').where('hostname', '=', 'lost-answer-agent').execute();
    expect(rows.map((r) => Number(r.id))).toEqual([t.agent.workerId]);
  } finally {
    loseAnswer = undefined;
    await t.dispose();
  }
});

it('adopts its row when the attempt whose answer was lost commits only after the retry looked for it', async () => {
  // A Data API call that timed out may still run later. Here the first INSERT fails towards the agent unrun, and
  // the same row lands just before the retry's INSERT, after the retry found no row: the retry meets its duplicate.
  let inserts = 0;
  let landing = false;
  gate = async (call) => {
    // tdb.db reaches the same stand-in: the late row's own INSERT is not the agent's.
    if (!registration(call) || landing) return;
    inserts++;
    if (inserts === 1) throw new Error('injected: the service failed this call');
    if (inserts === 2) {
      const id = Number(Object.values(call.parameters![0]!.value ?? {})[0]);
      const at = new Date();
      landing = true;
      await tdb.db
        .insertInto('workers')
        .values({ id, hostname: 'late-answer-agent', queues: '["@default"]', slots: 1, pids: '{}', heartbeat_at: at, started_at: at, suspended: false, draining: false, version: 0 })
        .execute();
    }
  };
  const t = testAgent(handle, { hostname: 'late-answer-agent' });
  try {
    await t.agent.start();
    expect(inserts).toBe(2);
    const rows = await tdb.db.selectFrom('workers').select('id').where('hostname', '=', 'late-answer-agent').execute();
    expect(rows.map((r) => Number(r.id))).toEqual([t.agent.workerId]);
  } finally {
    gate = undefined;
    await t.dispose();
  }
});

it('fails its start at once when the database refuses the registration for good (a missing grant)', async () => {
  let refused = 0;
  gate = async (call) => {
    if (!registration(call)) return;
    refused++;
    // What the stand-in answers for a MySQL error (BadRequestException): not the database's for now.
    throw Object.assign(new Error('INSERT command denied'), { errno: 1142, sqlMessage: "INSERT command denied to user 'kuroko_agent'" });
  };
  const t = testAgent(handle, { hostname: 'refused-agent' });
  try {
    await expect(t.agent.start()).rejects.toThrow(/1142|denied/);
    expect(refused).toBe(1);
  } finally {
    gate = undefined;
    await t.dispose().catch(() => undefined);
  }
});

it('`kuroko agent` over the Data API starts although its schema check fails more often than the client retries', async () => {
  // Six failed reads: the Data API client repeats a read four times, so the command itself must try again.
  let failed = 0;
  gate = async (call) => {
    if (!/kysely_migration/.test(call.sql ?? '') || failed >= 6) return;
    failed++;
    throw new Error('injected: the service failed this call');
  };
  const logDir = mkdtempSync(join(tmpdir(), 'kuroko-agent-blip-'));
  const signals = new EventEmitter();
  const stderr: string[] = [];
  const io = { stdout: () => undefined, stderr: (text: string) => void stderr.push(text) };
  try {
    const run = runAgentCommand(['--database-url', tdb.url, '--log-dir', logDir, '--hostname', 'blip-command', '--slots', '1'], io, {
      env: AGENT_ENV,
      signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
    });
    await waitFor(async () => (await tdb.db.selectFrom('workers').select('id').where('hostname', '=', 'blip-command').execute()).length === 1, { timeoutMs: 20_000 });
    expect(failed).toBe(6);
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await run).toBe(0);
  } finally {
    gate = undefined;
    rmSync(logDir, { recursive: true, force: true });
  }
}, 30_000);
