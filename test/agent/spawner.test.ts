/**
 * agent/spawner.ts: commands started from the spawner process keep what startCommand guarantees on the agent's own
 * thread (process group, pid before output, merged ordered output, exit status and signals, the gate, group kills,
 * --run-as), and the spawner's own failures end no command silently. Real processes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPidAlive, isProcessGroupAlive, parseProcStat } from '../../agent/proc';
import { GATE_CLOSED_STATUS, type CommandSpec, type RunningCommand } from '../../agent/process-runner';
import { startSpawner, type Spawner } from '../../agent/spawner';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, killStrayGroups } from './agent-fixtures';

const warnings: string[] = [];
const logger = { warn: (message: string) => warnings.push(message), error: (message: string) => warnings.push(message) };
let spawner: Spawner;
let scratch: string;
const strays: number[] = [];
const started: RunningCommand[] = [];

beforeAll(() => {
  spawner = startSpawner({ logger });
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-spawner-'));
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((command) => command.kill(0)));
  killStrayGroups(strays);
});
afterAll(async () => {
  await spawner.close();
  rmSync(scratch, { recursive: true, force: true });
});

function run(shell: string, spec: Partial<CommandSpec> = {}, on: Spawner = spawner) {
  const events: string[] = [];
  const chunks: string[] = [];
  const command = on.start(
    { shell, env: {}, inheritEnv: AGENT_ENV, ...spec },
    {
      onSpawn: (pid) => events.push(`spawn ${pid}`),
      onOutput: (chunk) => {
        chunks.push(chunk);
        events.push('output');
      },
    },
  );
  started.push(command);
  return { command, events, output: () => chunks.join('') };
}

/** The parent of a process, from /proc. */
function parentOf(pid: number): number | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.ppid;
  } catch {
    return undefined;
  }
}

describe('the spawner', () => {
  it('spawns in its own process: pid before any output, a group of its own, exit status and merged output in order', async () => {
    const r = run('echo $$; echo err >&2; echo out; cut -d" " -f4,5 /proc/$$/stat; sleep 0.2; exit 7');
    const pid = await r.command.spawned;
    expect(pid).toBeGreaterThan(0);
    // Started by the spawner, not by this process: this thread never forked.
    const parent = parentOf(pid!);
    expect(parent).not.toBe(process.pid);
    expect(parentOf(parent!)).toBe(process.pid);
    const result = await r.command.done;
    expect(result.exitStatus).toBe(7);
    expect(result.termSignal).toBeNull();
    expect(result.startedAt).toBeInstanceOf(Date);
    expect(r.command.pid).toBe(pid);
    expect(r.command.pgid).toBe(pid);
    expect(r.events[0]).toBe(`spawn ${pid}`);
    expect(r.events.slice(1).every((event) => event === 'output')).toBe(true);
    // ppid and pgrp: the spawner's child, leading its own group.
    expect(r.output()).toBe(`${pid}\nerr\nout\n${parent} ${pid}\n`);
  });

  it('keeps a large multi-byte output whole and in order', async () => {
    const r = run(`for i in $(seq 1 2000); do echo "$i 漢字テキスト"; done`);
    await r.command.done;
    const lines = r.output().trimEnd().split('\n');
    expect(lines).toHaveLength(2000);
    expect(lines.every((line, i) => line === `${i + 1} 漢字テキスト`)).toBe(true);
  });

  it('delivers output a grandchild writes after done, as on the agent thread', async () => {
    const go = join(scratch, 'late-go');
    const r = run(`(while [ ! -f '${go}' ]; do sleep 0.02; done; echo late) & echo early`, { outputDrainMs: 100 });
    const result = await r.command.done;
    expect(result.outputDrained).toBe(false);
    expect(r.output()).toBe('early\n');
    writeFileSync(go, '');
    await waitFor(() => r.output() === 'early\nlate\n', { description: 'the late output' });
  });

  it('holds a gated command until open(), and shut() ends it unrun', async () => {
    const opened = join(scratch, 'opened');
    const gated = run(`echo "$LINENO" > '${opened}'`, { gated: true });
    const pid = await gated.command.spawned;
    await new Promise((r) => setTimeout(r, 300));
    expect(isProcessGroupAlive(pid!)).toBe(true);
    expect(existsSync(opened)).toBe(false);
    gated.command.open();
    expect((await gated.command.done).exitStatus).toBe(0);
    expect(readFileSync(opened, 'utf8')).toBe('1\n');

    const shutMarker = join(scratch, 'shut');
    const shut = run(`touch '${shutMarker}'`, { gated: true });
    shut.command.shut();
    expect((await shut.command.done).exitStatus).toBe(GATE_CLOSED_STATUS);
    expect(existsSync(shutMarker)).toBe(false);
  });

  it('kills the whole group, TERM then KILL, even when asked before the pid arrived', async () => {
    const r = run("trap '' TERM; sleep 300 & echo $!; wait");
    // Asked at once: the kill waits for the spawn, then for a grandchild to be there to kill.
    const grandchild = await waitFor(() => /^(\d+)$/m.exec(r.output())?.[1], { description: 'the grandchild' });
    const outcome = await r.command.kill(200);
    expect(outcome).toEqual({ termSent: true, killSent: true, groupEmpty: true });
    expect((await r.command.done).termSignal).toBe('SIGKILL');
    expect(isPidAlive(Number(grandchild))).toBe(false);

    const early = run('sleep 300');
    const earlyKill = early.command.kill(5_000);
    expect(early.command.pid).toBeUndefined();
    expect(await earlyKill).toEqual({ termSent: true, killSent: false, groupEmpty: true });
    expect((await early.command.done).termSignal).toBe('SIGTERM');
  });

  it('reports a shell that cannot be started as before: 127, the reason as output, no pid', async () => {
    const r = run('echo hi', { shellPath: '/nonexistent/sh' });
    expect(await r.command.spawned).toBeUndefined();
    const result = await r.command.done;
    expect(result.exitStatus).toBe(127);
    expect(result.spawnError).toContain('/nonexistent/sh');
    expect(r.events).toEqual(['output']);
    expect(r.command.pid).toBeUndefined();
    expect(await r.command.kill(100)).toEqual({ termSent: false, killSent: false, groupEmpty: true });
  });

  it('runs the command as the --run-as user', { skip: process.getuid?.() !== 0 }, async () => {
    const r = run('id -u; id -g; echo "$HOME $USER"', { runAs: { name: 'nobody', uid: 65534, gid: 65534, home: '/' } });
    expect((await r.command.done).exitStatus).toBe(0);
    expect(r.output()).toBe('65534\n65534\n/ nobody\n');
  });
});

describe('when the spawner fails', () => {
  it('starts commands on the calling thread when the spawner cannot be loaded', async () => {
    const broken = startSpawner({ logger, hostUrl: pathToFileURL(join(scratch, 'missing-host.mjs')).href });
    try {
      const r = run('echo $$; cut -d" " -f4 /proc/$$/stat', {}, broken);
      const result = await r.command.done;
      expect(result.exitStatus).toBe(0);
      // Its parent is this process.
      expect(r.output()).toBe(`${r.command.pid}\n${process.pid}\n`);
      expect(warnings.some((w) => w.includes('could not start'))).toBe(true);
    } finally {
      await broken.close();
    }
  });

  it('kills and ends the commands of a spawner that dies, and starts the next ones here', async () => {
    const own = startSpawner({ logger });
    try {
      const r = run('sleep 300 & echo $!; wait', {}, own);
      const pid = (await r.command.spawned)!;
      const grandchild = Number(await waitFor(() => /^(\d+)$/m.exec(r.output())?.[1], { description: 'the grandchild' }));
      process.kill(parentOf(pid)!, 'SIGKILL');
      const result = await r.command.done;
      expect(result.exitStatus).toBeNull();
      expect(result.spawnError).toMatch(/the command spawner stopped/);
      expect(r.output()).toMatch(/kuroko agent: the command spawner stopped .*; the command was killed\n$/);
      await waitFor(() => !isProcessGroupAlive(pid), { description: 'the group to end' });
      expect(isPidAlive(grandchild)).toBe(false);
      const next = run('echo $$', {}, own);
      expect(next.command.pid).toBeGreaterThan(0);
      expect((await next.command.done).exitStatus).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('leaves with its agent: a gated command whose agent died never runs', { timeout: 60_000 }, async () => {
    const marker = join(scratch, 'orphan');
    const pidFile = join(scratch, 'orphan.pid');
    const script = join(scratch, 'agent.ts');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';\n` +
        `import { startSpawner } from ${JSON.stringify(resolve('agent/spawner.ts'))};\n` +
        `const s = startSpawner({ logger: console });\n` +
        `const c = s.start({ shell: ${JSON.stringify(`touch '${marker}'; sleep 300`)}, env: {}, inheritEnv: { PATH: process.env.PATH }, gated: true });\n` +
        `c.spawned.then((pid) => writeFileSync(${JSON.stringify(pidFile)}, String(pid)));\n` +
        `setInterval(() => {}, 1000);\n`,
    );
    const agent = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore' });
    const pid = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined), {
      timeoutMs: 30_000,
      description: 'the agent to start its command',
    });
    strays.push(pid);
    const spawnerPid = parentOf(pid)!;
    expect(parentOf(spawnerPid)).toBe(agent.pid);
    agent.kill('SIGKILL');
    await waitFor(() => !isPidAlive(spawnerPid), { timeoutMs: 15_000, description: 'the spawner to leave' });
    await waitFor(() => !isProcessGroupAlive(pid), { timeoutMs: 15_000, description: 'the orphaned command to end' });
    expect(existsSync(marker)).toBe(false);
  });
});
