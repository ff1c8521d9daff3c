/**
 * `kuroko agent` as a real child process (bin/kuroko.js): killed with SIGKILL it leaves what the monitor needs
 * to notice (a pid without a finish, a worker row whose heartbeat goes stale); SIGTERM drains it and it exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isProcessGroupAlive } from '../../agent/proc';
import { parseAgentConfig, runAgentCommand } from '../../cli/agent-command';
import { ConfigError } from '../../core/errors';
import { fromDbTime } from '../../db/column-codec';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, executionRow, queueExecutions, killStrayGroups } from './agent-fixtures';

const KUROKO_BIN = fileURLToPath(new URL('../../bin/kuroko.js', import.meta.url));
const HEARTBEAT_SECONDS = 1;
const WAIT = { timeoutMs: 30_000 };

describe('kuroko agent process', () => {
  let tdb: TestDatabase;
  let scratch: string;
  const children: ChildProcess[] = [];
  const strayGroups: number[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('mysql');
    scratch = mkdtempSync(join(tmpdir(), 'kuroko-agent-proc-'));
  });
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    killStrayGroups(strayGroups);
  });
  afterAll(async () => {
    await tdb?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const startAgentProcess = (queue: string): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } => {
    let stderr = '';
    const child = spawn(
      process.execPath,
      [KUROKO_BIN, 'agent', '--database-url', tdb.url, '--queue', queue, '--log-dir', join(scratch, 'logs'), '--heartbeat-interval', String(HEARTBEAT_SECONDS)],
      { env: { ...AGENT_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    children.push(child);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, exited, stderr: () => stderr };
  };

  const started = (id: number) =>
    waitFor(async () => {
      const e = await executionRow(tdb.db, id);
      return e.pid !== null ? e : undefined;
    }, { ...WAIT, description: `execution ${id} to get a pid` });

  const workerRow = (workerId: number) => tdb.db.selectFrom('workers').selectAll().where('id', '=', workerId).executeTakeFirst();

  it('killed with SIGKILL mid-command, leaves a pid without a finish and a worker whose heartbeat goes stale', async () => {
    const leaderFile = join(scratch, 'crash-leader.pid');
    await queueExecutions(tdb.db, [{ id: 20_001, shell: `echo $$ > '${leaderFile}'; sleep 300`, queue: 'crash' }]);
    const { child, exited } = startAgentProcess('crash');
    const row = await started(20_001);
    strayGroups.push(row.pid!);
    const workerId = row.workerId!;
    // Alive and heart-beating with the command first, so the staleness below is the kill's doing. A heartbeat
    // that merely lands after the pid can have listed its pids before the command was spawned: wait for the pid.
    await waitFor(async () => JSON.parse((await workerRow(workerId))!.pids)[String(20_001)] === row.pid, {
      ...WAIT,
      description: 'a heartbeat listing the command',
    });

    const killedAt = Date.now();
    child.kill('SIGKILL');
    await exited;
    // Three heartbeat intervals later the row is still there, untouched since the kill (a heartbeat the server had
    // already received may still land after the exit, but it carries a time from before the kill): stale for the
    // monitor to see.
    await waitFor(() => Date.now() - killedAt > 3 * HEARTBEAT_SECONDS * 1000, WAIT);
    const worker = await workerRow(workerId);
    expect(worker).toBeDefined();
    expect(fromDbTime(worker!.heartbeat_at).getTime()).toBeLessThanOrEqual(killedAt);
    expect(JSON.parse(worker!.pids)).toEqual({ [String(20_001)]: row.pid });

    const after = await executionRow(tdb.db, 20_001);
    expect([after.pid, after.finishedAt, after.exitStatus, after.attempt]).toEqual([row.pid, null, null, 1]);
    expect(after.leaseExpiresAt).not.toBeNull();
    // What happens to the command: its group was detached (setsid), so it outlives the agent, as in Kuroko2, until a
    // live agent on the host sees it was finished as lost and kills it (test/agent/leftovers.test.ts).
    expect(Number(readFileSync(leaderFile, 'utf8'))).toBe(row.pid);
    expect(isProcessGroupAlive(row.pid!)).toBe(true);
  });

  it('drains on SIGTERM: the running command finishes and is recorded, nothing new is claimed, exit 0', async () => {
    const gate = join(scratch, 'term-gate');
    await queueExecutions(tdb.db, [{ id: 20_101, shell: `while [ ! -f '${gate}' ]; do sleep 0.02; done; echo finished`, queue: 'term' }]);
    const { child, exited, stderr } = startAgentProcess('term');
    const row = await started(20_101);
    child.kill('SIGTERM');
    await waitFor(() => stderr().includes('stopping (SIGTERM): claims are over'), WAIT);
    await queueExecutions(tdb.db, [{ id: 20_102, shell: 'echo too late', queue: 'term' }]);
    expect(child.exitCode).toBeNull();
    writeFileSync(gate, '');
    expect(await exited).toBe(0);
    const done = await executionRow(tdb.db, 20_101);
    expect([done.exitStatus, done.outputHead]).toEqual([0, 'finished\n']);
    expect((await executionRow(tdb.db, 20_102)).claimedAt).toBeNull();
    expect(await workerRow(row.workerId!)).toBeUndefined();
    expect(existsSync(join(scratch, 'logs', '20101.log'))).toBe(true);
    expect(readFileSync(join(scratch, 'logs', '20101.log'), 'utf8')).toBe('finished\n');
  });
});

describe('kuroko agent configuration', () => {
  it('lists every problem at once and exits 2', async () => {
    let err = '';
    const status = await runAgentCommand(['--slots', '0', '--queue', 'bad queue', '--idle-timeout', 'soon', '--frobnicate'], {
      stdout: () => undefined,
      stderr: (text) => (err += text),
    }, { env: {} });
    expect(status).toBe(2);
    expect(err).toContain('unknown option --frobnicate');
    expect(err).toContain('a database URL is required: --database-url or KUROKO_DATABASE_URL');
    expect(err).toContain('queues.0: is not a queue name');
    expect(err).toContain('--slots must be at least 1');
    expect(err).toContain('--idle-timeout must be a whole number');
  });

  it('falls back to the environment, and options win over it', () => {
    const env = { KUROKO_DATABASE_URL: 'sqlite:/tmp/x.db', KUROKO_QUEUES: 'a, b,,a', KUROKO_SLOTS: '5', KUROKO_LOG_DIR: '/tmp/logs' };
    expect(parseAgentConfig([], env)).toMatchObject({ databaseUrl: 'sqlite:/tmp/x.db', queues: ['a', 'b'], slots: 5, logDir: '/tmp/logs' });
    expect(parseAgentConfig(['--queue=c', '--slots', '1', '--idle-timeout', '30'], env)).toMatchObject({
      queues: ['c'],
      slots: 1,
      idleTimeoutMs: 30_000,
    });
    expect(parseAgentConfig(['--database-url', 'sqlite:/tmp/y.db'], {})).toMatchObject({ queues: ['@default'], slots: 2 });
    expect(() => parseAgentConfig(['--database-url', 'mysql://host'], {})).toThrow(ConfigError);
  });
});
