/**
 * An agent cut off from the database for longer than its lease, while its command runs (issue 15, `npm run chaos`
 * scenario 4): the command is killed by its own agent when the lease runs out unrenewed, so that once the monitor
 * judges the worker lost (a threshold longer than the lease and the kill grace) a retry never runs beside it. Its
 * finish is not written (the monitor finishes it as lost). Real MariaDB behind a TCP proxy that stops forwarding.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isPidAlive } from '../../agent/proc';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { startProxy, type Proxy } from '../../bench/chaos/proxy';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { killStrayGroups, queueExecutions, testAgent, type TestAgent } from './agent-fixtures';

const LEASE_MS = 3_000;
const EXECUTION_ID = 8_100;

let tdb: TestDatabase;
let proxy: Proxy;
let handle: DatabaseHandle;
let agent: TestAgent | undefined;
const groups: number[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  const url = new URL(tdb.url);
  proxy = await startProxy(Number(url.port || 3306));
  url.port = String(proxy.port);
  handle = createDatabase(url.toString());
});
afterAll(async () => {
  proxy?.heal();
  await agent?.dispose();
  killStrayGroups(groups);
  await handle?.close();
  await proxy?.close();
  await tdb?.close();
});

it('kills its command once the lease ran out unrenewed, and writes no finish for it', { timeout: 60_000 }, async () => {
  agent = testAgent(handle, { leaseMs: LEASE_MS, heartbeatIntervalMs: 200, killGraceMs: 500 });
  await agent.agent.start();
  await queueExecutions(tdb.db, [{ id: EXECUTION_ID, shell: 'sleep 120' }]);
  const pid = await waitFor(
    async () => (await tdb.db.selectFrom('executions').select('pid').where('id', '=', EXECUTION_ID).executeTakeFirst())?.pid,
    { timeoutMs: 20_000, description: 'the command to start' },
  );
  groups.push(pid);
  proxy.partition();
  // Within the lease and the kill grace, with margin; without the watchdog it would run its 120 s.
  await waitFor(() => !isPidAlive(pid), { timeoutMs: LEASE_MS * 4, description: 'the cut-off command to be killed' });
  proxy.heal();
  const row = await tdb.db.selectFrom('executions').select(['finished_at', 'exit_status']).where('id', '=', EXECUTION_ID).executeTakeFirstOrThrow();
  expect(row).toEqual({ finished_at: null, exit_status: null });
});
