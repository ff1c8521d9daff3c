/**
 * Every process the chaos harness starts goes through `spawnTracked`, and `endAll` ends them (their whole process
 * groups), so a run that fails halfway leaves nothing behind. Commands the workload ran are ended through the pids
 * their ledger lines name.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KUROKO_BIN = join(ROOT, 'bin/kuroko.js');

export interface Tracked {
  /** The process running now (a new one after each restart). */
  child: ChildProcess;
  name: string;
  output(): string;
  /** Answers once the process exited and no restart is pending. */
  exited: Promise<void>;
  alive(): boolean;
  /** How many times `restartOnFailure` started the process again. */
  restarts(): number;
  /** Signals the process group, or cancels a pending restart; answers once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the process again, with the same command, arguments and environment, `delayMs` after it exited with a
 * failure (a non-zero code, or a signal that `stop` did not send); not after exit 0 or `stop`. This mirrors the
 * EC2 agent's systemd unit (`Restart=on-failure`, `RestartSec=` AGENT_RESTART_SECONDS of cdk/constructs/agent-unit.ts),
 * so an agent whose start failed under a fault comes back as it would in production.
 */
export interface RestartOnFailure {
  delayMs: number;
  /** Told just before each restart, while `output()` still ends with what the failed process printed. */
  onRestart(entry: Tracked, exit: string): void;
}

export interface TrackOptions {
  /** Outlives scenarios (the harness's MariaDB): ended by endAll(true) only. */
  persistent?: boolean;
  restartOnFailure?: RestartOnFailure;
}

const tracked = new Set<Tracked>();
/** Processes that outlive a scenario (the harness's MariaDB): ended by endAll(true) only. */
const kept = new Set<Tracked>();
const extraGroups = new Set<number>();
const OUTPUT_KEPT = 20_000;
const STOP_GRACE_MS = 5_000;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Spawns a process in its own group, keeps the tail of its output, and registers it for endAll. */
export function spawnTracked(name: string, command: string, args: string[], options: SpawnOptions = {}, track: TrackOptions = {}): Tracked {
  const set = track.persistent ? kept : tracked;
  let out = '';
  let stopping = false;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let down!: () => void;
  const exited = new Promise<void>((resolve) => (down = resolve));
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  const start = (): ChildProcess => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => {
      const restart = track.restartOnFailure;
      if (restart && !stopping && code !== 0) {
        restartTimer = setTimeout(() => {
          restartTimer = undefined;
          restarts++;
          restart.onRestart(entry, signal ?? `code ${code}`);
          entry.child = start();
        }, restart.delayMs);
        return;
      }
      set.delete(entry);
      down();
    });
    return child;
  };
  const entry: Tracked = {
    child: start(),
    name,
    output: () => out,
    exited,
    alive: () => entry.child.exitCode === null && entry.child.signalCode === null,
    restarts: () => restarts,
    async stop(signal = 'SIGTERM') {
      stopping = true;
      if (restartTimer !== undefined) {
        clearTimeout(restartTimer);
        restartTimer = undefined;
        set.delete(entry);
        down();
      }
      const { child } = entry;
      if (entry.alive() && child.pid !== undefined) {
        signalGroup(child.pid, signal);
        const timer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      set.delete(entry);
    },
  };
  set.add(entry);
  return entry;
}

/** A process group to kill at the end too (a command the workload started: its pid from the ledger). */
export function trackGroup(pid: number): void {
  extraGroups.add(pid);
}

/** Ends every tracked process and group (SIGKILL after a grace period); `everything` ends the kept ones too. */
export async function endAll(everything = false): Promise<void> {
  await Promise.all([...tracked, ...(everything ? kept : [])].map((entry) => entry.stop('SIGTERM')));
  for (const pid of extraGroups) signalGroup(pid, 'SIGKILL');
  extraGroups.clear();
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


/** Polls until `predicate` is truthy; answers undefined at the deadline instead of throwing. */
export async function poll<T>(predicate: () => T | Promise<T>, timeoutMs: number, intervalMs = 250): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return undefined;
    await delay(intervalMs);
  }
}
