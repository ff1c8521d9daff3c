/**
 * `npm run bench:spawn`: what starting one command costs the agent's process and the command's own shell, in CPU
 * milliseconds per command. Issue 18's W2 with a separate agent is CPU-bound on 2 cores, and a command's start is
 * the largest part of it (bench/throughput-profile.ts prints the per-process split).
 *
 * Each row runs KUROKO_BENCH_COMMANDS (default 1,000) `true` commands one after another through the agent's own
 * startCommand (agent/process-runner.ts), the way job-runner.ts starts them: gated and opened at once, with a
 * status file removed after the exit. The agent side is this process's CPU (process.cpuUsage); the shell side is
 * the CPU of its reaped children (/proc/self/stat cutime + cstime), which includes the fork's copy of this process
 * being torn down by the exec. The rows alternate, three rounds, and the medians are printed; the machine's noise
 * shows as the spread, printed beside them. Reference rows: a bare Node spawn of `/bin/bash -c true` with two
 * pipes, and of `/bin/true`, the floor any Node agent pays.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCommand } from '../agent/process-runner';

const COMMANDS = Number(process.env.KUROKO_BENCH_COMMANDS ?? 1_000);
const ROUNDS = 3;
const CLK_TCK_MS = 10;
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: 'C.UTF-8' };

/** CPU ms of this process's reaped children so far. */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 0, cutime field 13, cstime field 14.
  return (Number(fields[13]) + Number(fields[14])) * CLK_TCK_MS;
}

type Runner = (index: number) => Promise<void>;

function agentStart(dir: string): Runner {
  return async (index) => {
    const statusFile = join(dir, `${index}.status`);
    const command = startCommand({ shell: 'true', env: {}, inheritEnv: ENV, gated: true, statusFile });
    command.open();
    const result = await command.done;
    if (result.exitStatus !== 0) throw new Error(`command ${index} exited ${String(result.exitStatus)}`);
    unlinkSync(statusFile);
  };
}

function bareSpawn(file: string, args: string[]): Runner {
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(file, args, { detached: true, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.resume();
      child.stderr.resume();
      child.once('error', reject);
      child.once('close', () => resolve());
    });
}

async function measure(run: Runner): Promise<{ own: number; children: number }> {
  const cpu = process.cpuUsage();
  const children = childrenCpuMs();
  for (let i = 0; i < COMMANDS; i++) await run(i);
  const used = process.cpuUsage(cpu);
  return { own: (used.user + used.system) / 1000 / COMMANDS, children: (childrenCpuMs() - children) / COMMANDS };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-spawn-'));
try {
  const rows: Array<[string, Runner]> = [
    ['agent startCommand: gated, status file (what job-runner.ts runs)', agentStart(dir)],
    ['bare Node spawn of /bin/bash -c true, two pipes', bareSpawn('/bin/bash', ['-c', 'true'])],
    ['bare Node spawn of /bin/true, two pipes', bareSpawn('/bin/true', [])],
  ];
  const results = rows.map(() => [] as Array<{ own: number; children: number }>);
  await measure(rows[0]![1]); // warm-up: module code, the first forks
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, [, run]] of rows.entries()) results[index]!.push(await measure(run));
  }
  console.log(`${COMMANDS} commands per row, ${ROUNDS} rounds alternating; CPU ms per command, median (min-max)\n`);
  console.log('| start | agent process | the shell (child) | total |');
  console.log('|---|---:|---:|---:|');
  const cell = (values: number[]) => `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)})`;
  for (const [index, [name]] of rows.entries()) {
    const runs = results[index]!;
    console.log(`| ${name} | ${cell(runs.map((r) => r.own))} | ${cell(runs.map((r) => r.children))} | ${cell(runs.map((r) => r.own + r.children))} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
