/**
 * A command that ends while its agent is dead: its process group survives the agent (SIGKILL), completes, and its
 * shell leaves the exit status in the status folder. The agent that starts next on the host records that finish,
 * fenced on the attempt, so the instance goes on as if nothing happened instead of being finished as lost and
 * re-run on retry. Real agent process (bin/kuroko.js), real MariaDB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isProcessGroupAlive } from '../../agent/proc';
import { startCommand } from '../../agent/process-runner';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, executionRow, killStrayGroups, queueExecutions, testAgent, type TestAgent } from './agent-fixtures';

const KUROKO_BIN = fileURLToPath(new URL('../../bin/kuroko.js', import.meta.url));
const HOST = 'chaos-host-1';

let tdb: TestDatabase;
let scratch: string;
let first: ChildProcess | undefined;
let second: TestAgent | undefined;
const strayGroups: number[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-dead-agent-'));
});
afterAll(async () => {
  if (first && first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
  await second?.dispose();
  killStrayGroups(strayGroups);
  await tdb?.close();
  rmSync(scratch, { recursive: true, force: true });
});

it('records the exit status of a command that ended while its agent was dead, and runs it only once', { timeout: 120_000 }, async () => {
  const logDir = join(scratch, 'logs');
  const go = join(scratch, 'go');
  const ledger = join(scratch, 'ran.txt');
  const running = join(scratch, 'running');
  await queueExecutions(tdb.db, [{ id: 31_001, shell: `touch '${running}'; while [ ! -e '${go}' ]; do sleep 0.1; done; echo ran >> '${ledger}'; exit 3` }]);

  first = spawn(process.execPath, [KUROKO_BIN, 'agent', '--database-url', tdb.url, '--hostname', HOST, '--log-dir', logDir], {
    env: { ...AGENT_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: 'ignore',
  });
  const started = await waitFor(async () => {
    const e = await executionRow(tdb.db, 31_001);
    return e.pid !== null ? e : undefined;
  }, { timeoutMs: 60_000, description: 'the command to start' });
  const pid = started.pid!;
  strayGroups.push(pid);
  // Past its gate (the pid is written a moment before the agent opens it).
  await waitFor(() => existsSync(running), { description: 'the script to run' });
  const exited = new Promise((resolve) => first?.once('exit', resolve));
  first.kill('SIGKILL');
  await exited;

  // The agent is dead; its command goes on in its own group and completes.
  writeFileSync(go, '');
  await waitFor(() => !isProcessGroupAlive(pid), { description: 'the orphaned command to end' });
  expect((await executionRow(tdb.db, 31_001)).finishedAt).toBeNull();

  // The agent that restarts on the host (a new worker, same host name and folder) records the finish.
  second = testAgent(tdb.openAnother(), { hostname: HOST, statusDir: logDir, leftoverCheckMs: 200 });
  await second.agent.start();
  const row = await waitFor(async () => {
    const e = await executionRow(tdb.db, 31_001);
    return e.finishedAt !== null ? e : undefined;
  }, { timeoutMs: 30_000, description: 'the finish to be recorded' });
  expect(row.exitStatus).toBe(3);
  expect(row.lostReason).toBeNull();
  expect(row.attempt).toBe(started.attempt);
  expect(readFileSync(ledger, 'utf8')).toBe('ran\n');
  // Its status file is gone once the finish is recorded.
  await waitFor(() => !existsSync(join(logDir, `31001.${started.attempt}.status`)), { description: 'the status file to be removed' });
});

it('has the shell write its exit status on exit, subshells aside, and say nothing when it cannot', async () => {
  const statusFile = join(scratch, 'runner.status');
  const ran = startCommand({ shell: `(exit 9); echo out; exit 5`, env: {}, inheritEnv: AGENT_ENV, statusFile });
  expect((await ran.done).exitStatus).toBe(5);
  expect(readFileSync(statusFile, 'utf8')).toBe('5\n');

  let output = '';
  const unwritable = startCommand(
    { shell: 'echo only-this', env: {}, inheritEnv: AGENT_ENV, statusFile: join(scratch, 'no-such-folder', 'x.status') },
    { onOutput: (chunk) => (output += chunk) },
  );
  expect((await unwritable.done).exitStatus).toBe(0);
  expect(output).toBe('only-this\n');
});
