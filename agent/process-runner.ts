/**
 * Runs one shell command the way Kuroko2's executor did (`Open3.popen2e(env, cmd, unsetenv_others: true,
 * pgroup: true)`), on Node: a new process group, stdin closed, stdout and stderr merged in order, a clean
 * environment, the exit status or signal recorded in full, and a kill that reaches the whole group.
 *
 * Merging stdout and stderr in order: Node cannot hand one pipe to two child fds, and reading two pipes
 * loses the order between them. So the shell is started as `<shell> -c 'exec 2>&1; <script>'`: the shell
 * points its stderr at the stdout pipe before any line of the script runs, exactly like popen2e's shared
 * pipe. The prefix sits on the script's first line so `$LINENO` and the shell's "line N" messages keep
 * their numbers. A syntax error on that first line is reported by the shell before the redirect, so
 * stderr is still read from its own pipe; that pipe closes the moment the redirect happens, and stdout is
 * held back until it does, which keeps those early messages ahead of everything else. The shell must
 * therefore be POSIX (`-c`, `exec 2>&1`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { errorMessage } from '../core/errors';
import { DEFAULT_OUTPUT_DRAIN_MS, watchChild } from './child-watch';
import { errnoCode } from './proc';
import { killProcessGroup, nothingToKill, type KillOutcome } from './process-kill';
import { runAsWorkingDirectory, type RunAsUser } from './run-as';

export const DEFAULT_SHELL_PATH = '/bin/bash';
/** Redirects the shell's stderr onto its stdout before the script's first command. */
const MERGE_STDERR_PREFIX = 'exec 2>&1; ';
/**
 * With `gated`: the shell first waits for `go` on fd 3, closes it, then runs the script. Anything else (the pipe
 * closed because the agent died, or was closed on purpose) ends the shell with GATE_CLOSED_STATUS before one line
 * of the script ran. Same line as the script, so `$LINENO` keeps its numbers.
 */
const GATE_PREFIX = 'IFS= read -r kuroko_go <&3 && [ "$kuroko_go" = go ] || exit 125; exec 3<&-; unset kuroko_go; ';
export const GATE_CLOSED_STATUS = 125;

/**
 * With `statusFile`: the shell writes its exit status there when it exits (an EXIT trap; subshells do not inherit
 * it), so a command that ends while its agent is dead leaves its status for the agent that restarts on the host.
 * A script that sets its own EXIT trap, or `exec`s, leaves no file: it is then lost as before.
 */
function statusPrefix(statusFile: string): string {
  // Silent: a folder the command's user cannot write to must not add a line to its output.
  return `__kuroko_status=${shellQuote(statusFile)}; trap '{ echo $? > "$__kuroko_status"; } 2>/dev/null' EXIT; `;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Shell conventions: 127 "not found", 126 "found but cannot be executed". */
const EXIT_NOT_FOUND = 127;
const EXIT_NOT_EXECUTABLE = 126;

/** The agent environment variables a command inherits (Kuroko2: HOME, PATH, LANG); the token's ENV wins. */
export interface InheritedEnv {
  HOME?: string;
  PATH?: string;
  LANG?: string;
}

/** What to run. */
export interface CommandSpec {
  /** The script, run as `<shellPath> -c <shell>`. */
  shell: string;
  /** The token's ENV plus the KUROKO2_* variables. */
  env: Record<string, string>;
  /** Defaults to /bin/bash; must be a POSIX shell. */
  shellPath?: string;
  cwd?: string;
  inheritEnv: InheritedEnv;
  /**
   * Hold the script until `open()` (the agent records the pid first): a command never runs unseen, and one whose
   * opener died or called `shut()` exits GATE_CLOSED_STATUS without running.
   */
  gated?: boolean;
  /** Where the shell writes its exit status when it exits (see statusPrefix). */
  statusFile?: string;
  /** Overrides DEFAULT_OUTPUT_DRAIN_MS (the quiet period after the leader's exit). */
  outputDrainMs?: number;
  /**
   * Run the command as this user (agent/run-as.ts): its uid and primary group, HOME, USER and LOGNAME of that user,
   * and its home as the working directory unless `cwd` says otherwise.
   */
  runAs?: RunAsUser;
}

/** Callbacks from a running command. They must not throw; a throw is caught and reported in the result. */
export interface RunHooks {
  /** Called synchronously inside startCommand, right after spawn and before any output. */
  onSpawn?: (pid: number) => void;
  /**
   * Output as UTF-8 text, never splitting a multi-byte character across calls. When the shell cannot be
   * started, it receives the reason, possibly before startCommand returns.
   */
  onOutput?: (chunk: string) => void;
}

export interface CommandResult {
  /** 0-255, or null when the command died by a signal or never started. */
  exitStatus: number | null;
  /** The signal that ended the leader ('SIGTERM', 'SIGKILL' ...), or null. */
  termSignal: string | null;
  /** Why the shell could not be started; the same text was sent through onOutput. */
  spawnError?: string;
  startedAt: Date;
  finishedAt: Date;
  /**
   * False when the output pipe was still open (held by a background grandchild) when `done` resolved:
   * see DEFAULT_OUTPUT_DRAIN_MS. Later output still reaches onOutput until the pipe closes.
   */
  outputDrained: boolean;
  /** The first error thrown by a hook, if any. */
  hookError?: string;
}

export interface RunningCommand {
  /** Undefined when the shell could not be spawned, or (started off-thread, agent/command-thread.ts) not yet. */
  pid: number | undefined;
  /** Equals pid: the command leads its own group. */
  pgid: number | undefined;
  /** Resolves with the pid once the spawn is over (right after onSpawn), or undefined when it failed. */
  spawned: Promise<number | undefined>;
  /** Resolves (never rejects) when the leader has exited and its output has drained (see CommandResult). */
  done: Promise<CommandResult>;
  /** SIGTERM to the group, SIGKILL after graceMs if any member is left. Never rejects. */
  kill(graceMs: number): Promise<KillOutcome>;
  /** A gated command: lets the script run. No-op otherwise, or once the gate was opened or shut. */
  open(): void;
  /** A gated command: ends it before its script runs (exit GATE_CLOSED_STATUS). No-op otherwise. */
  shut(): void;
}

/** startCommand, or an equivalent that spawns elsewhere (agent/command-thread.ts). */
export type CommandStarter = (spec: CommandSpec, hooks?: RunHooks) => RunningCommand;

/** Starts a command in a new process group and streams its merged output to the hooks. */
export function startCommand(given: CommandSpec, hooks: RunHooks = {}): RunningCommand {
  // The status trap before the gate: a gate that closes unopened leaves its GATE_CLOSED_STATUS too. Both sit on
  // the script's first line, after the stderr redirect, so `$LINENO` keeps its numbers.
  const prefix = (given.statusFile !== undefined ? statusPrefix(given.statusFile) : '') + (given.gated ? GATE_PREFIX : '');
  const spec = prefix === '' ? given : { ...given, shell: prefix + given.shell };
  const startedAt = new Date();
  let hookError: string | undefined;
  const callHook = (call: () => void): void => {
    try {
      call();
    } catch (error) {
      hookError ??= errorMessage(error);
    }
  };
  const emit = (chunk: string): void => {
    if (chunk !== '') callHook(() => hooks.onOutput?.(chunk));
  };
  const shellPath = spec.shellPath ?? DEFAULT_SHELL_PATH;

  const failedResult = (reason: string, code: string | undefined): CommandResult => {
    const spawnError = `cannot start ${shellPath}: ${reason}`;
    emit(`${spawnError}\n`);
    const result: CommandResult = {
      exitStatus: code === 'EACCES' || code === 'ENOEXEC' ? EXIT_NOT_EXECUTABLE : EXIT_NOT_FOUND,
      termSignal: null,
      spawnError,
      startedAt,
      finishedAt: new Date(),
      outputDrained: true,
    };
    if (hookError !== undefined) result.hookError = hookError;
    return result;
  };
  const notStarted = (done: Promise<CommandResult>): RunningCommand => ({
    pid: undefined,
    pgid: undefined,
    spawned: Promise.resolve(undefined),
    done,
    kill: () => Promise.resolve(nothingToKill()),
    open: () => {},
    shut: () => {},
  });
  const failure = (reason: string, code: string | undefined): RunningCommand =>
    notStarted(Promise.resolve(failedResult(reason, code)));

  const runAs = spec.runAs;
  // The agent's own folder may be closed to the user; a shell started there could not even read its cwd.
  const cwd = spec.cwd ?? (runAs === undefined ? undefined : runAsWorkingDirectory(runAs));
  // Node reports a missing cwd as "spawn /bin/bash ENOENT", which blames the shell; say what is wrong.
  if (cwd !== undefined) {
    const problem = directoryProblem(cwd);
    if (problem !== undefined) return failure(problem, 'ENOENT');
  }

  let child: ChildProcess;
  try {
    child = spawn(shellPath, ['-c', MERGE_STDERR_PREFIX + spec.shell], {
      cwd,
      env: buildEnvironment(spec),
      ...(runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid }),
      // setsid(): the command leads a new session and group, so a group kill spares the agent, and the
      // command outlives an agent crash like Kuroko2's (the monitor then judges it from outside).
      detached: true,
      // 'ignore' is /dev/null: a read of stdin ends at once instead of waiting for ever.
      stdio: spec.gated ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    // Invalid arguments (a NUL byte in the script or the environment) throw synchronously.
    return failure(errorMessage(error), errnoCode(error));
  }

  const pid = child.pid;
  if (pid === undefined) {
    // The spawn failed (ENOENT, EACCES); Node emits the reason as 'error' on the next tick.
    return notStarted(
      new Promise((resolve) => {
        child.once('error', (error) => resolve(failedResult(spawnErrorReason(error), errnoCode(error))));
      }),
    );
  }

  callHook(() => hooks.onSpawn?.(pid));
  const done = watchChild(child, emit, spec.outputDrainMs ?? DEFAULT_OUTPUT_DRAIN_MS).then((watched) => {
    const result: CommandResult = { ...watched, startedAt };
    if (hookError !== undefined) result.hookError = hookError;
    return result;
  });
  const gate = spec.gated ? (child.stdio[3] as Writable | null | undefined) : undefined;
  // The shell may exit before reading (a syntax error): a write to the closed pipe is nothing to report.
  gate?.on('error', () => {});
  // Once the shell is gone the pipe has no reader left: let go of it whether or not it was opened.
  if (gate) child.once('exit', () => gate.destroy());
  const openGate = (word: string): void => {
    if (gate === undefined || gate === null || gate.writableEnded) return;
    gate.end(`${word}\n`);
  };
  return { pid, pgid: pid, spawned: Promise.resolve(pid), done, kill: (graceMs) => killProcessGroup(pid, graceMs), open: () => openGate('go'), shut: () => openGate('no') };
}

/**
 * The child's whole environment: HOME, PATH and LANG from the agent (HOME, USER and LOGNAME of the `runAs` user
 * instead when there is one), then the command's ENV on top.
 */
export function buildEnvironment(spec: Pick<CommandSpec, 'env' | 'inheritEnv' | 'runAs'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['HOME', 'PATH', 'LANG'] as const) {
    const value = spec.inheritEnv[name];
    if (value !== undefined) env[name] = value;
  }
  if (spec.runAs !== undefined) {
    env.HOME = spec.runAs.home;
    env.USER = spec.runAs.name;
    env.LOGNAME = spec.runAs.name;
  }
  return Object.assign(env, spec.env);
}

function directoryProblem(path: string): string | undefined {
  try {
    return statSync(path).isDirectory() ? undefined : `working directory ${path} is not a directory`;
  } catch (error) {
    return `working directory ${path} is not accessible (${errnoCode(error) ?? errorMessage(error)})`;
  }
}

/** Node words a failed exec as "spawn /x ENOENT"; say it the way a shell user reads it. */
function spawnErrorReason(error: unknown): string {
  const code = errnoCode(error);
  const text = code === undefined ? undefined : SPAWN_ERROR_TEXT[code];
  return text === undefined ? errorMessage(error) : `${text} (${code})`;
}

const SPAWN_ERROR_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ENOEXEC: 'not an executable format',
  ENOTDIR: 'a path component is not a directory',
};
