/**
 * Issue 13, "Commands never hold the agent's privileges": `kuroko agent --run-as USER` runs each command as USER,
 * so a command cannot read the agent's own 0600 files, runs with USER's uid and environment, and is still killed
 * with its whole process group and watched through /proc by the (root) agent.
 *
 * Real processes and a real throwaway user (useradd): the test needs root, and says so when it is skipped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isProcessGroupAlive, listProcessGroupMembers } from '../../agent/proc';
import { startCommand } from '../../agent/process-runner';
import { lookUpUser, prepareRunAs, type RunAsUser } from '../../agent/run-as';
import { parseAwsAgentArgs, runAwsAgent } from '../../agent/main';
import { sampleProcessGroupRss } from '../../agent/memory-sampler';
import { runAgentCommand } from '../../cli/agent-command';
import { AGENT_ENV, executionRow, killStrayGroups, queueExecutions } from '../agent/agent-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

const IS_ROOT = process.getuid?.() === 0;
const KUROKO_BIN = fileURLToPath(new URL('../../bin/kuroko.js', import.meta.url));
const WAIT = { timeoutMs: 30_000 };
const SECRET = 'agent-only-secret';

if (!IS_ROOT) {
  console.warn('test/security/agent-run-as.test.ts is skipped: creating a throwaway user and switching to it needs root');
}

/** The real uid of a process, from /proc/<pid>/status. */
const uidOf = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

describe.skipIf(!IS_ROOT)('kuroko agent --run-as (needs root)', () => {
  const userName = `kuroko_t_${randomBytes(4).toString('hex')}`;
  let user: RunAsUser;
  let scratch: string;
  let secretFile: string;
  const strayGroups: number[] = [];

  beforeAll(() => {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', userName]);
    const found = lookUpUser(userName);
    if (found === undefined) throw new Error(`useradd made no ${userName}`);
    user = found;
    scratch = mkdtempSync(join(tmpdir(), 'kuroko-run-as-'));
    // The agent's own files: credentials 0600 in a folder anyone may enter, as a careless data dir would be.
    chmodSync(scratch, 0o755);
    secretFile = join(scratch, 'credentials.json');
    writeFileSync(secretFile, SECRET, { mode: 0o600 });
  });
  afterEach(() => killStrayGroups(strayGroups));
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
    execFileSync('userdel', ['--remove', userName], { stdio: 'ignore' });
  });

  const run = async (shell: string, runAs: RunAsUser | undefined): Promise<{ output: string; exitStatus: number | null }> => {
    let output = '';
    const command = startCommand(
      { shell, env: {}, inheritEnv: AGENT_ENV, ...(runAs !== undefined ? { runAs } : {}) },
      { onOutput: (chunk) => (output += chunk) },
    );
    if (command.pid !== undefined) strayGroups.push(command.pid);
    const result = await command.done;
    return { output, exitStatus: result.exitStatus };
  };

  it('runs the command with the user\'s uid, group and environment, in its home', async () => {
    const { output, exitStatus } = await run('id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"; pwd', user);
    expect(exitStatus).toBe(0);
    // Supplementary groups are dropped: libuv calls setgroups(0, NULL) before setgid/setuid.
    expect(output).toBe(`${user.uid}\n${user.gid}\n${user.gid}\n${user.home} ${userName} ${userName}\n${user.home}\n`);
  });

  it('cannot read a 0600 file of the agent, which the agent itself can', async () => {
    const asAgent = await run(`cat '${secretFile}'`, undefined);
    expect(asAgent).toEqual({ output: SECRET, exitStatus: 0 });
    const asUser = await run(`cat '${secretFile}'`, user);
    expect(asUser.exitStatus).toBe(1);
    expect(asUser.output).toContain('Permission denied');
    expect(asUser.output).not.toContain(SECRET);
  });

  it('is still killed with its whole group, and sampled through /proc, though it belongs to another uid', async () => {
    const command = startCommand({ shell: 'trap "" TERM; sleep 300 & sleep 300 & wait', env: {}, inheritEnv: AGENT_ENV, runAs: user });
    const pid = command.pid!;
    strayGroups.push(pid);
    const members = await waitFor(() => {
      const list = listProcessGroupMembers(pid) ?? [];
      return list.length >= 3 ? list : undefined;
    }, { ...WAIT, description: 'the shell and its two sleeps' });
    expect(members.map(uidOf)).toEqual(members.map(() => user.uid));
    expect(sampleProcessGroupRss(pid)).toBeGreaterThan(0);
    // Every member ignores TERM (inherited), so only the KILL after the grace empties the group.
    const outcome = await command.kill(200);
    expect(outcome).toMatchObject({ termSent: true, killSent: true, groupEmpty: true });
    expect(isProcessGroupAlive(pid)).toBe(false);
    expect((await command.done).termSignal).toBe('SIGKILL');
  });

  it('refuses at start a user that does not exist, root, or the agent\'s own user, saying why', async () => {
    await expect(prepareRunAs('no_such_user_kuroko', '/bin/bash')).rejects.toThrow(/no user "no_such_user_kuroko"/);
    await expect(prepareRunAs('root', '/bin/bash')).rejects.toThrow(/root; commands must run as an unprivileged user/);
    await expect(prepareRunAs('0', '/bin/bash')).rejects.toThrow(/is root/);
    let err = '';
    const status = await runAgentCommand(['--run-as', 'no_such_user_kuroko', '--database-url', `sqlite:${join(scratch, 'never.db')}`], {
      stdout: () => {},
      stderr: (text) => (err += text),
    });
    expect(status).toBe(1);
    expect(err).toMatch(/^kuroko agent: invalid configuration:\n {2}- --run-as: no user "no_such_user_kuroko" on this host/);
  });

  it('the EC2 agent takes --run-as and checks it before reading its configuration', async () => {
    expect(parseAwsAgentArgs(['--run-as', 'kuroko-job'])).toEqual({ runAs: 'kuroko-job' });
    expect(() => parseAwsAgentArgs(['--run-as'])).toThrow(/only --run-as USER/);
    // No SSM parameter is named: the user check fails first.
    await expect(runAwsAgent({ env: {}, runAs: 'no_such_user_kuroko' })).rejects.toThrow(/--run-as: no user "no_such_user_kuroko"/);
  });

  it('says so at start when the agent cannot switch users', async () => {
    // The agent itself unprivileged (the throwaway user), asked to run commands as nobody: setuid is refused.
    const nobody = lookUpUser('nobody');
    expect(nobody).toBeDefined();
    const script = `import('${fileURLToPath(new URL('../../agent/run-as.ts', import.meta.url))}').then((m) => m.prepareRunAs('nobody', '/bin/bash')).then(() => console.log('switched'), (e) => console.log(e.message))`;
    const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
    const out = execFileSync(process.execPath, [tsx, '-e', script], { uid: user.uid, gid: user.gid, cwd: '/', encoding: 'utf8', env: { PATH: AGENT_ENV.PATH } });
    expect(out).toMatch(new RegExp(`--run-as: the agent \\(uid ${user.uid}\\) cannot start commands as nobody .*EPERM.*run it as root or with CAP_SETUID and CAP_SETGID`));
  });

  describe('a real `kuroko agent --run-as` process over MariaDB', () => {
    let tdb: TestDatabase;
    let agent: ChildProcess | undefined;
    beforeAll(async () => {
      tdb = await createTestDatabase('mysql');
    });
    afterAll(async () => {
      if (agent !== undefined && agent.exitCode === null) agent.kill('SIGKILL');
      await tdb?.close();
    });

    it('runs the command as the user, who can read neither the agent\'s credentials nor its log folder', async () => {
      const logDir = join(scratch, 'logs');
      await queueExecutions(tdb.db, [{ id: 31_001, shell: `id -un; cat '${secretFile}' || echo cat-failed; ls '${logDir}' || echo ls-failed`, queue: 'runas' }]);
      let stderr = '';
      agent = spawn(process.execPath, [KUROKO_BIN, 'agent', '--queue', 'runas', '--log-dir', logDir, '--run-as', userName, '--idle-timeout', '2'], {
        env: { ...AGENT_ENV, KUROKO_DATABASE_URL: tdb.url },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      agent.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => agent?.on('exit', (code) => resolve(code)));
      const done = await waitFor(async () => {
        const row = await executionRow(tdb.db, 31_001);
        return row.finishedAt !== null ? row : undefined;
      }, { ...WAIT, description: `execution 31001 to finish (agent stderr: ${stderr})` });
      expect(done.exitStatus).toBe(0);
      expect(done.outputHead).toContain(`${userName}\n`);
      expect(done.outputHead).toContain('Permission denied');
      expect(done.outputHead).toContain('cat-failed');
      expect(done.outputHead).toContain('ls-failed');
      expect(done.outputHead).not.toContain(SECRET);
      expect(statSync(logDir).mode & 0o777).toBe(0o700);
      expect(stderr).toContain(`commands run as ${userName} (uid ${user.uid}`);
      expect(await exited).toBe(0);
    });
  });
});
