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
  child: ChildProcess;
  name: string;
  output(): string;
  exited: Promise<void>;
  alive(): boolean;
  /** Signals the process group; answers once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
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
export function spawnTracked(name: string, command: string, args: string[], options: SpawnOptions = {}, persistent = false): Tracked {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const entry: Tracked = {
    child,
    name,
    output: () => out,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM') {
      if (entry.alive() && child.pid !== undefined) {
        signalGroup(child.pid, signal);
        const timer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      tracked.delete(entry);
      kept.delete(entry);
    },
  };
  (persistent ? kept : tracked).add(entry);
  void exited.then(() => {
    tracked.delete(entry);
    kept.delete(entry);
  });
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
