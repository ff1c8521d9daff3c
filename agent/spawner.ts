/**
 * Starts commands from a small long-lived spawner process (agent/spawner-host.ts, a child of the agent) instead of
 * the thread that runs the agent. `kuroko dev` uses it; a separate agent keeps startCommand on its own thread.
 *
 * Why: `spawn()` is synchronous. libuv forks the whole process and then blocks until the child has exec'd, so each
 * command costs the calling thread about 1 ms of CPU (the fork, the pipes, the child's exit) plus the wait for the
 * child to be scheduled, several ms under load. In `kuroko dev` that thread also runs the passes and the API over
 * SQLite: 1,000 `true` jobs on 8 slots spent 40 to 55% of it inside spawn. The host runs the very same startCommand
 * (process group, gate, merged ordered output, drain, status file, --run-as) and sends back the pid, the output
 * chunks in order and the result; kills need only the pgid and are sent from here (process-kill.ts). A worker
 * thread was tried too: it takes the wait off the main thread, but its forks still copy the agent's whole address
 * space and cost about 0.5 ms more CPU per command than this process's.
 *
 * The host leaves when the agent's channel closes, so an agent that dies takes its commands' pipes and gates with
 * it as before (a gated command then exits unrun). If it cannot be loaded, commands are started on the calling
 * thread (and the reason logged); if it dies with commands under way, their groups are killed and they end with a
 * message saying so.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { errorMessage } from '../core/errors';
import type { Logger } from '../core/ports';
import { killProcessGroup, nothingToKill } from './process-kill';
import { startCommand, type CommandResult, type CommandSpec, type CommandStarter, type RunHooks, type RunningCommand } from './process-runner';

export type ToSpawner = { type: 'start'; id: number; spec: CommandSpec } | { type: 'open' | 'shut'; id: number };
export type FromSpawner =
  | { type: 'ready' }
  | { type: 'spawned'; id: number; pid: number | undefined }
  | { type: 'output'; id: number; chunk: string }
  | { type: 'done'; id: number; result: CommandResult }
  | { type: 'failed'; id: number; error: string };

export interface Spawner {
  /** Like startCommand, but `pid` is set (and onSpawn called) only once the spawner reports the spawn. */
  start: CommandStarter;
  /** Ends the spawner. Commands still followed end unsettled (exit null), their groups left to the leftover killer. */
  close(): Promise<void>;
}

export interface SpawnerOptions {
  logger: Pick<Logger, 'warn' | 'error'>;
  /** The host module (tests point it elsewhere); spawner-host next to this file by default. */
  hostUrl?: string;
}

/** The spawner as the agent talks to it. */
interface Host {
  post(message: ToSpawner): void;
  onMessage(listener: (message: FromSpawner) => void): void;
  /** Called once, when the host failed or went away. */
  onGone(listener: (why: string) => void): void;
  /** Whether the host keeps this process alive: only while commands are followed, like their own child handles. */
  hold(held: boolean): void;
  end(): Promise<void>;
}

/** How many ended commands whose pipes were still open keep receiving output (see startSpawner's `late`). */
const LATE_OUTPUT_KEPT = 1_000;

/** A command started by the host, as the agent follows it. */
interface Followed {
  command: RunningCommand;
  hooks: RunHooks;
  startedAt: Date;
  hookError: string | undefined;
  resolveSpawned: (pid: number | undefined) => void;
  resolveDone: (result: CommandResult) => void;
}

/** The host module next to this file (spawner-host.ts when running the sources, which then need tsx to load it). */
function defaultHostUrl(): string {
  return new URL(`./spawner-host${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;
}

function processHost(url: string): Host {
  const child = fork(fileURLToPath(url), [], {
    // Only what loads the host (tsx for TypeScript sources), not the agent's own flags (--cpu-prof, --inspect ...).
    execArgv: extname(fileURLToPath(url)) === '.ts' ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [],
    // Structured clone instead of JSON: the results' Dates arrive as Dates.
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const channel = child.channel as { ref?: () => void; unref?: () => void } | null | undefined;
  const hold = (held: boolean): void => {
    if (held) {
      child.ref();
      channel?.ref?.();
    } else {
      child.unref();
      channel?.unref?.();
    }
  };
  hold(false);
  return {
    hold,
    post: (message) => void child.send(message),
    onMessage: (listener) => child.on('message', (message) => listener(message as FromSpawner)),
    onGone: (listener) => {
      child.on('error', (error) => listener(errorMessage(error)));
      child.on('exit', (code, signal) => listener(`exit ${signal ?? code}`));
    },
    end: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await exited;
    },
  };
}

export function startSpawner(options: SpawnerOptions): Spawner {
  const { logger } = options;
  const followed = new Map<number, Followed>();
  /**
   * Commands that ended with their output pipe still open (a background grandchild holds it): what it writes later
   * still reaches onOutput, as on the agent's own thread. The oldest are forgotten past LATE_OUTPUT_KEPT.
   */
  const late = new Map<number, Followed>();
  const keepForLateOutput = (id: number, entry: Followed): void => {
    late.set(id, entry);
    if (late.size > LATE_OUTPUT_KEPT) late.delete(late.keys().next().value as number);
  };
  /** Messages posted before the host said it is ready (replayed on this thread if it never is). */
  let queued: ToSpawner[] | undefined = [];
  let state: 'loading' | 'ready' | 'gone' = 'loading';
  let closing = false;
  let nextId = 1;

  const host = processHost(options.hostUrl ?? defaultHostUrl());
  const send = (message: ToSpawner): void => {
    if (queued !== undefined) queued.push(message);
    else if (state === 'ready') host.post(message);
  };

  const callHook = (entry: Followed, call: () => void): void => {
    try {
      call();
    } catch (error) {
      entry.hookError ??= errorMessage(error);
    }
  };
  const settle = (id: number, result: CommandResult): void => {
    const entry = followed.get(id);
    if (entry === undefined) return;
    followed.delete(id);
    if (!result.outputDrained) keepForLateOutput(id, entry);
    if (followed.size === 0) host.hold(false);
    if (entry.command.pid === undefined) entry.resolveSpawned(undefined);
    if (entry.hookError !== undefined) result.hookError ??= entry.hookError;
    entry.resolveDone(result);
  };
  const abandon = (id: number, entry: Followed, why: string): void => {
    const pid = entry.command.pid;
    const text = `kuroko agent: ${why}${pid === undefined || closing ? '' : '; the command was killed'}\n`;
    callHook(entry, () => entry.hooks.onOutput?.(text));
    if (pid !== undefined && !closing) void killProcessGroup(pid, 0);
    const now = new Date();
    settle(id, { exitStatus: null, termSignal: null, startedAt: entry.startedAt, finishedAt: now, outputDrained: false, spawnError: why });
  };

  host.onMessage((message) => {
    if (message.type === 'ready') {
      state = 'ready';
      const backlog = queued ?? [];
      queued = undefined;
      for (const early of backlog) host.post(early);
      return;
    }
    if (message.type === 'output') {
      const entry = followed.get(message.id) ?? late.get(message.id);
      if (entry !== undefined) callHook(entry, () => entry.hooks.onOutput?.(message.chunk));
      return;
    }
    const entry = followed.get(message.id);
    if (entry === undefined) return;
    if (message.type === 'spawned') {
      entry.command.pid = message.pid;
      entry.command.pgid = message.pid;
      if (message.pid !== undefined) {
        const pid = message.pid;
        callHook(entry, () => entry.hooks.onSpawn?.(pid));
      }
      entry.resolveSpawned(message.pid);
    } else if (message.type === 'done') {
      settle(message.id, message.result);
    } else {
      abandon(message.id, entry, `the command spawner failed: ${message.error}`);
    }
  });
  const lost = (why: string): void => {
    if (state === 'gone') return;
    const wasLoading = state === 'loading';
    state = 'gone';
    const backlog = queued ?? [];
    queued = undefined;
    if (wasLoading && !closing) {
      logger.warn('the command spawner could not start; commands are started on the main thread', { error: why });
      // Nothing reached the host: run what was asked on this thread, in order.
      for (const early of backlog) replayOnThisThread(early);
      return;
    }
    if (!closing) logger.error('the command spawner stopped', { error: why });
    for (const [id, entry] of [...followed]) abandon(id, entry, closing ? 'the agent stopped following the command' : `the command spawner stopped (${why})`);
  };
  host.onGone(lost);

  /** What a followed command becomes when the host never loaded: startCommand here, wired to the same promises. */
  const replayOnThisThread = (message: ToSpawner): void => {
    const entry = followed.get(message.id);
    if (entry === undefined) return;
    if (message.type !== 'start') {
      if (message.type === 'open') entry.command.open();
      else entry.command.shut();
      return;
    }
    const local = startCommand(message.spec, {
      onSpawn: (pid) => {
        entry.command.pid = pid;
        entry.command.pgid = pid;
        entry.hooks.onSpawn?.(pid);
      },
      onOutput: (chunk) => entry.hooks.onOutput?.(chunk),
    });
    entry.command.open = () => local.open();
    entry.command.shut = () => local.shut();
    entry.resolveSpawned(local.pid);
    void local.done.then((result) => settle(message.id, result));
  };

  const start: CommandStarter = (spec, hooks = {}) => {
    if (state === 'gone') return startCommand(spec, hooks);
    const id = nextId++;
    let resolveSpawned!: (pid: number | undefined) => void;
    let resolveDone!: (result: CommandResult) => void;
    const spawned = new Promise<number | undefined>((resolve) => (resolveSpawned = resolve));
    const done = new Promise<CommandResult>((resolve) => (resolveDone = resolve));
    const command: RunningCommand = {
      pid: undefined,
      pgid: undefined,
      spawned,
      done,
      // A kill asked before the pid is known waits for it; a group kill needs nothing from the host.
      kill: async (graceMs) => {
        const pid = await spawned;
        return pid === undefined ? nothingToKill() : killProcessGroup(pid, graceMs);
      },
      open: () => send({ type: 'open', id }),
      shut: () => send({ type: 'shut', id }),
    };
    if (followed.size === 0) host.hold(true);
    followed.set(id, { command, hooks, startedAt: new Date(), hookError: undefined, resolveSpawned, resolveDone });
    send({ type: 'start', id, spec });
    return command;
  };

  return {
    start,
    async close() {
      closing = true;
      await host.end();
    },
  };
}
