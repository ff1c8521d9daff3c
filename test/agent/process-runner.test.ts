import { chmodSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isPidAlive, isProcessGroupAlive, parseProcStat } from '../../agent/proc';
import { startCommand } from '../../agent/process-runner';
import type { CommandResult, CommandSpec, RunningCommand } from '../../agent/process-runner';

const POLL_MS = 10;
const WAIT_MS = 10_000;
const GRACE_MS = 5_000;

/** Polls until check() returns a value other than undefined/false, or fails at the deadline. */
async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

interface Run {
  running: RunningCommand;
  chunks: string[];
  events: string[];
  output: () => string;
}

const agentEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/home/agent', LANG: 'C.UTF-8' };
const started: RunningCommand[] = [];

function run(shell: string, spec: Partial<CommandSpec> = {}): Run {
  const chunks: string[] = [];
  const events: string[] = [];
  const running = startCommand(
    { shell, env: {}, inheritEnv: agentEnv, ...spec },
    {
      onSpawn: (pid) => events.push(`spawn ${pid}`),
      onOutput: (chunk) => {
        chunks.push(chunk);
        events.push('output');
      },
    },
  );
  started.push(running);
  return { running, chunks, events, output: () => chunks.join('') };
}

async function finish(shell: string, spec: Partial<CommandSpec> = {}): Promise<{ result: CommandResult; output: string; run: Run }> {
  const r = run(shell, spec);
  const result = await r.running.done;
  return { result, output: r.output(), run: r };
}

/** Waits for the first line of output that is a pid (the scripts echo `$!`). */
async function echoedPid(r: Run): Promise<number> {
  const line = await waitFor('an echoed pid', () => /^(\d+)$/m.exec(r.output())?.[1]);
  return Number(line);
}

afterEach(async () => {
  // Leave no process behind, whatever a test did.
  await Promise.all(started.splice(0).map((r) => r.kill(0)));
});

describe('startCommand: exit status and signals', () => {
  it.each([0, 1, 2, 127, 255])('records exit %i exactly', async (status) => {
    const { result } = await finish(`exit ${status}`);
    expect(result.exitStatus).toBe(status);
    expect(result.termSignal).toBeNull();
    expect(result.spawnError).toBeUndefined();
    expect(result.finishedAt.getTime()).toBeGreaterThanOrEqual(result.startedAt.getTime());
  });

  it('reports an unknown command as 127 with the shell message', async () => {
    const { result, output } = await finish('no_such_command_kuroko');
    expect(result.exitStatus).toBe(127);
    expect(output).toContain('no_such_command_kuroko');
    expect(output).toContain('not found');
  });

  it.each(['TERM', 'KILL'])('records death by SIG%s with no exit status', async (signal) => {
    const { result } = await finish(`kill -${signal} $$`);
    expect(result.exitStatus).toBeNull();
    expect(result.termSignal).toBe(`SIG${signal}`);
  });
});

describe('startCommand: output', () => {
  it('merges stdout and stderr in the order they were written', async () => {
    expect((await finish('echo a; echo b >&2; echo c')).output).toBe('a\nb\nc\n');
    const { output } = await finish('for i in $(seq 1 300); do echo out$i; echo err$i >&2; done');
    const expected = Array.from({ length: 300 }, (_, i) => `out${i + 1}\nerr${i + 1}\n`).join('');
    expect(output).toBe(expected);
  });

  it('keeps a syntax error on the first line and line numbers as the script has them', async () => {
    const broken = await finish('echo a; (');
    expect(broken.result.exitStatus).toBe(2);
    expect(broken.output).toContain('syntax error');
    expect((await finish('echo $LINENO\necho $LINENO')).output).toBe('1\n2\n');
  });

  it('never splits a multi-byte character across chunks', async () => {
    // The child sleeps between the halves of each character so they arrive in separate reads.
    const { output, run: r } = await finish(
      "printf '\\xe6\\x97'; sleep 0.1; printf '\\xa5\\xe6\\x9c\\xac\\n'; " +
        "printf '\\xf0\\x9f' >&2; sleep 0.1; printf '\\x98\\x80\\n' >&2; echo 終わり",
    );
    expect(output).toBe('日本\n😀\n終わり\n');
    for (const chunk of r.chunks) {
      expect(chunk).not.toContain('\uFFFD');
      // In a /u pattern \p{Cs} matches only a lone surrogate, that is half a 4-byte character.
      expect(/\p{Cs}/u.test(chunk)).toBe(false);
    }
  });

  it('delivers a large multi-byte output whole', async () => {
    const { output, result } = await finish('yes あいう😀 | head -n 50000');
    expect(result.exitStatus).toBe(0);
    expect(output).toBe('あいう😀\n'.repeat(50_000));
  });

  it('runs with stdin closed', async () => {
    expect((await finish('cat; echo rc=$?')).output).toBe('rc=0\n');
  });

  it('runs in the given working directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-cwd-'));
    try {
      expect((await finish('pwd', { cwd: dir })).output).toBe(`${realpathSync(dir)}\n`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('startCommand: environment', () => {
  const leakName = 'KUROKO_TEST_AGENT_SECRET';

  afterAll(() => {
    delete process.env[leakName];
  });

  it('passes only ENV, the agent HOME/PATH/LANG and the given variables; ENV wins', async () => {
    process.env[leakName] = 'must-not-leak';
    const { output } = await finish('env', {
      env: {
        PATH: '/usr/bin:/bin',
        FOO: 'bar baz',
        KUROKO2_JOB_INSTANCE_ID: '42',
        KUROKO2_JOB_DEFINITION_NAME: 'ジョブ',
      },
    });
    const vars = new Map(
      output
        .trimEnd()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    expect(vars.has(leakName)).toBe(false);
    expect(vars.get('PATH')).toBe('/usr/bin:/bin');
    expect(vars.get('HOME')).toBe('/home/agent');
    expect(vars.get('LANG')).toBe('C.UTF-8');
    expect(vars.get('FOO')).toBe('bar baz');
    expect(vars.get('KUROKO2_JOB_INSTANCE_ID')).toBe('42');
    expect(vars.get('KUROKO2_JOB_DEFINITION_NAME')).toBe('ジョブ');
    // Whatever else is there, bash set it itself.
    const given = ['PATH', 'HOME', 'LANG', 'FOO', 'KUROKO2_JOB_INSTANCE_ID', 'KUROKO2_JOB_DEFINITION_NAME'];
    const bashOwn = ['PWD', 'SHLVL', '_', 'OLDPWD'];
    expect([...vars.keys()].filter((name) => !given.includes(name) && !bashOwn.includes(name))).toEqual([]);
  });

  it('omits agent variables that are not set', async () => {
    const { output } = await finish('echo "${LANG-unset} ${HOME-unset}"', { inheritEnv: { PATH: agentEnv.PATH } });
    expect(output).toBe('unset unset\n');
  });
});

describe('startCommand: process group and hooks', () => {
  it('calls onSpawn with the pid before any output, and the command leads its own group', async () => {
    const { run: r, output } = await finish('echo $$; cut -d" " -f5 /proc/$$/stat');
    const pid = r.running.pid;
    expect(pid).toBeGreaterThan(0);
    expect(r.running.pgid).toBe(pid);
    expect(r.events[0]).toBe(`spawn ${pid}`);
    expect(r.events.slice(1).every((event) => event === 'output')).toBe(true);
    expect(output).toBe(`${pid}\n${pid}\n`);
    expect(pid).not.toBe(process.pid);
  });

  it('does not hang on a background grandchild that keeps the output open', async () => {
    const r = run('sleep 300 & echo $!');
    const result = await r.running.done;
    expect(result.exitStatus).toBe(0);
    expect(result.outputDrained).toBe(false);
    const grandchild = await echoedPid(r);
    expect(isPidAlive(grandchild)).toBe(true);
    expect(isProcessGroupAlive(r.running.pgid ?? -1)).toBe(true);
    // The leader is gone, the group is not: kill still reaches it.
    const outcome = await r.running.kill(GRACE_MS);
    expect(outcome).toMatchObject({ termSent: true, killSent: false, groupEmpty: true });
    expect(isPidAlive(grandchild)).toBe(false);
  });

  it('waits for a grandchild that keeps writing after the leader exited', async () => {
    // Each tick comes well within the quiet period, so done waits for the pipe to close.
    const { result, output } = await finish('(for i in $(seq 1 10); do echo tick$i; sleep 0.05; done) & echo leader', {
      outputDrainMs: 2_000,
    });
    expect(result.outputDrained).toBe(true);
    expect(output).toContain('leader\n');
    expect(output).toContain('tick10\n');
  });

  it('delivers output written after done to onOutput', async () => {
    // The grandchild writes only once the test says so: a fixed delay could run out before done on a busy machine.
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-late-'));
    try {
      const gate = join(dir, 'gate');
      const r = run(`(while [ ! -f '${gate}' ]; do sleep 0.02; done; echo late) & echo early`, { outputDrainMs: 100 });
      const result = await r.running.done;
      expect(result.outputDrained).toBe(false);
      expect(r.output()).toBe('early\n');
      writeFileSync(gate, '');
      await waitFor('the late output', () => r.output() === 'early\nlate\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('catches a throwing hook and reports it', async () => {
    const running = startCommand(
      { shell: 'echo hi', env: {}, inheritEnv: agentEnv },
      {
        onOutput: () => {
          throw new Error('hook broke');
        },
      },
    );
    const result = await running.done;
    expect(result.exitStatus).toBe(0);
    expect(result.hookError).toBe('hook broke');
  });
});

describe('RunningCommand.kill', () => {
  it('reaches a grandchild with TERM', async () => {
    const r = run('sleep 300 & echo $!; wait');
    const grandchild = await echoedPid(r);
    const leader = r.running.pid ?? -1;
    expect(isPidAlive(leader)).toBe(true);
    expect(isPidAlive(grandchild)).toBe(true);

    const outcome = await r.running.kill(GRACE_MS);
    expect(outcome).toEqual({ termSent: true, killSent: false, groupEmpty: true });
    const result = await r.running.done;
    expect(result.termSignal).toBe('SIGTERM');
    expect(result.exitStatus).toBeNull();
    expect(isPidAlive(leader)).toBe(false);
    expect(isPidAlive(grandchild)).toBe(false);
    expect(isProcessGroupAlive(leader)).toBe(false);
  });

  it('sends KILL after the grace period to a group that ignores TERM', async () => {
    const r = run("trap '' TERM; sleep 300 & echo $!; wait");
    const grandchild = await echoedPid(r);
    const outcome = await r.running.kill(200);
    expect(outcome).toEqual({ termSent: true, killSent: true, groupEmpty: true });
    expect((await r.running.done).termSignal).toBe('SIGKILL');
    expect(isPidAlive(grandchild)).toBe(false);
  });

  it('sends nothing to a command that already finished', async () => {
    const r = run('true');
    await r.running.done;
    expect(await r.running.kill(100)).toEqual({ termSent: false, killSent: false, groupEmpty: true });
  });
});

describe('startCommand: spawn failures', () => {
  it('finishes a missing shell as 127 with the reason as output', async () => {
    const events: string[] = [];
    const running = startCommand(
      { shell: 'echo hi', env: {}, inheritEnv: agentEnv, shellPath: '/nonexistent/sh' },
      { onSpawn: () => events.push('spawn'), onOutput: (chunk) => events.push(chunk) },
    );
    expect(running.pid).toBeUndefined();
    const result = await running.done;
    expect(result.exitStatus).toBe(127);
    expect(result.termSignal).toBeNull();
    expect(result.spawnError).toContain('/nonexistent/sh');
    expect(result.spawnError).toContain('no such file');
    expect(events).toEqual([`${result.spawnError}\n`]);
    expect(await running.kill(100)).toEqual({ termSent: false, killSent: false, groupEmpty: true });
  });

  it('finishes a shell that is not executable as 126', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-shell-'));
    try {
      const shellPath = join(dir, 'sh');
      writeFileSync(shellPath, '#!/bin/sh\n');
      chmodSync(shellPath, 0o644);
      const { result, output } = await finish('echo hi', { shellPath });
      expect(result.exitStatus).toBe(126);
      expect(output).toContain('permission denied');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('names a missing working directory', async () => {
    const { result, output } = await finish('echo hi', { cwd: '/nonexistent-kuroko-dir' });
    expect(result.exitStatus).toBe(127);
    expect(result.spawnError).toContain('working directory /nonexistent-kuroko-dir');
    expect(output).toBe(`${result.spawnError}\n`);
  });

  it('rejects a script with a NUL byte as a spawn failure', async () => {
    const { result } = await finish('echo a\0b');
    expect(result.exitStatus).toBe(127);
    expect(result.spawnError).toBeDefined();
  });
});

describe('liveness checks', () => {
  it('sees this process alive and a finished one gone', async () => {
    expect(isPidAlive(process.pid)).toBe(true);
    const r = run('true');
    await r.running.done;
    expect(isPidAlive(r.running.pid ?? -1)).toBe(false);
    expect(isProcessGroupAlive(r.running.pgid ?? -1)).toBe(false);
  });

  it.each([0, -1, 1.5, Number.NaN])('treats %s as no process', (pid) => {
    expect(isPidAlive(pid)).toBe(false);
    expect(isProcessGroupAlive(pid)).toBe(false);
  });

  it('counts a zombie as dead although signal 0 still reaches it', async () => {
    // `exec sleep` replaces the shell with a parent that never reaps its child, which stays a zombie;
    // orphans whose new parent (PID 1 in a container) does not reap look the same. The child ends only once its
    // parent is `sleep`: one that ended before the exec would be reaped by the shell, and no zombie would appear.
    const r = run(`sh -c 'while [ "$(cat /proc/$PPID/comm)" != sleep ]; do sleep 0.01; done' & echo $!; exec sleep 300`);
    const zombie = await echoedPid(r);
    await waitFor('the zombie', () => readState(zombie) === 'Z');
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(isPidAlive(zombie)).toBe(false);
    expect(isProcessGroupAlive(r.running.pgid ?? -1)).toBe(true);
  });
});

function readState(pid: number): string | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'))?.state;
  } catch {
    return undefined;
  }
}

describe('parseProcStat', () => {
  it('finds the fields after a comm holding spaces and parentheses', () => {
    expect(parseProcStat('123 (a) b (c) S 1 456 456 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 4096')).toEqual({
      pid: 123,
      comm: 'a) b (c',
      state: 'S',
      ppid: 1,
      pgrp: 456,
      startTicks: 987654,
    });
  });

  it('rejects text that is not a stat line', () => {
    expect(parseProcStat('garbage')).toBeUndefined();
    expect(parseProcStat('1 (x) S')).toBeUndefined();
  });
});
