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
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import { errorMessage } from '../core/errors';
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

/**
 * After the leader exited, `done` waits for the output pipe to close, but only while output keeps coming:
 * it gives up after this long without output. A background grandchild (`sleep 300 &`) inherits the pipe
 * and may hold it open for ever; the command is over when its leader is. Waiting for silence rather than
 * a fixed time keeps the last output of a busy agent, whose reads lag behind the exit.
 */
export const DEFAULT_OUTPUT_DRAIN_MS = 500;
/** The longest `done` waits after the leader's exit, for a grandchild that never stops writing. */
export const OUTPUT_DRAIN_CAP_MS = 10_000;
/** How often `kill` looks at the group while waiting for it to empty. */
const KILL_POLL_MS = 25;
/** How long `kill` waits for the group to vanish after SIGKILL, which cannot be ignored. */
const KILL_SETTLE_MS = 5_000;
/** Shell conventions: 127 "not found", 126 "found but cannot be executed". */
const EXIT_NOT_FOUND = 127;
const EXIT_NOT_EXECUTABLE = 126;
const PROC_ROOT = '/proc';

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

export interface KillOutcome {
  termSent: boolean;
  killSent: boolean;
  /** Whether the group was seen empty when kill resolved. */
  groupEmpty: boolean;
  error?: string;
}

export interface RunningCommand {
  /** Undefined when the shell could not be spawned. */
  pid: number | undefined;
  /** Equals pid: the command leads its own group. */
  pgid: number | undefined;
  /** Resolves (never rejects) when the leader has exited and its output has drained (see CommandResult). */
  done: Promise<CommandResult>;
  /** SIGTERM to the group, SIGKILL after graceMs if any member is left. Never rejects. */
  kill(graceMs: number): Promise<KillOutcome>;
  /** A gated command: lets the script run. No-op otherwise, or once the gate was opened or shut. */
  open(): void;
  /** A gated command: ends it before its script runs (exit GATE_CLOSED_STATUS). No-op otherwise. */
  shut(): void;
}

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
    return failure(errorMessage(error), errorCode(error));
  }

  const pid = child.pid;
  if (pid === undefined) {
    // The spawn failed (ENOENT, EACCES); Node emits the reason as 'error' on the next tick.
    return notStarted(
      new Promise((resolve) => {
        child.once('error', (error) => resolve(failedResult(spawnErrorReason(error), errorCode(error))));
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
  return { pid, pgid: pid, done, kill: (graceMs) => killProcessGroup(pid, graceMs), open: () => openGate('go'), shut: () => openGate('no') };
}

/** Follows a spawned child's output and exit; see CommandResult for when it resolves. */
function watchChild(
  child: ChildProcess,
  emit: (chunk: string) => void,
  drainMs: number,
): Promise<Omit<CommandResult, 'startedAt'>> {
  const stdout = child.stdout;
  const stderr = child.stderr;
  if (stdout === null || stderr === null) throw new Error('spawn did not create the output pipes');
  const outDecoder = new StringDecoder('utf8');
  const errDecoder = new StringDecoder('utf8');
  let holdStdout = true;
  let held: string[] = [];
  let stdoutOpen = true;
  let stderrOpen = true;
  let exit: { exitStatus: number | null; termSignal: string | null; finishedAt: Date } | undefined;

  const fromStdout = (text: string): void => {
    if (holdStdout) held.push(text);
    else emit(text);
  };
  const release = (): void => {
    if (!holdStdout) return;
    holdStdout = false;
    const chunks = held;
    held = [];
    for (const chunk of chunks) emit(chunk);
  };

  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    let settled = false;
    let lastOutputAt = performance.now();
    const drainUntilQuiet = (exitedAt: number): void => {
      const now = performance.now();
      const quietLeft = lastOutputAt + drainMs - now;
      const capLeft = exitedAt + OUTPUT_DRAIN_CAP_MS - now;
      if (quietLeft <= 0 || capLeft <= 0) {
        settle(false);
        return;
      }
      drainTimer = setTimeout(() => drainUntilQuiet(exitedAt), Math.min(quietLeft, capLeft));
    };
    const settle = (outputDrained: boolean): void => {
      if (settled || exit === undefined) return;
      settled = true;
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      release();
      if (!outputDrained) {
        // Keep reading (so a grandchild never blocks on a full pipe) without keeping the agent alive.
        unrefStream(stdout);
        unrefStream(stderr);
      }
      resolve({ ...exit, outputDrained });
    };
    const maybeFinish = (): void => {
      if (!stdoutOpen && !stderrOpen) settle(true);
    };

    stdout.on('data', (data: Buffer) => {
      lastOutputAt = performance.now();
      fromStdout(outDecoder.write(data));
    });
    stderr.on('data', (data: Buffer) => {
      lastOutputAt = performance.now();
      emit(errDecoder.write(data));
    });
    stdout.on('close', () => {
      stdoutOpen = false;
      fromStdout(outDecoder.end());
      maybeFinish();
    });
    stderr.on('close', () => {
      stderrOpen = false;
      emit(errDecoder.end());
      release();
      maybeFinish();
    });
    child.on('exit', (code, signal) => {
      exit = { exitStatus: code, termSignal: signal, finishedAt: new Date() };
      release();
      maybeFinish();
      if (!settled) {
        const exitedAt = performance.now();
        lastOutputAt = Math.max(lastOutputAt, exitedAt);
        drainUntilQuiet(exitedAt);
      }
    });
  });
}

function unrefStream(stream: Readable): void {
  const handle = stream as Readable & { unref?: () => void };
  handle.unref?.();
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
    return `working directory ${path} is not accessible (${errorCode(error) ?? errorMessage(error)})`;
  }
}

function nothingToKill(): KillOutcome {
  return { termSent: false, killSent: false, groupEmpty: true };
}

/**
 * SIGTERM to every process of the group, then SIGKILL once graceMs has passed with any member left
 * (a grandchild can outlive its parent, so the group is checked, not the leader).
 */
export async function killProcessGroup(pgid: number, graceMs: number): Promise<KillOutcome> {
  if (!isProcessGroupAlive(pgid)) return nothingToKill();
  const term = signalGroup(pgid, 'SIGTERM');
  if (term.error !== undefined) return { termSent: false, killSent: false, groupEmpty: false, error: term.error };
  if (!term.sent || (await waitForEmptyGroup(pgid, graceMs))) {
    return { termSent: term.sent, killSent: false, groupEmpty: true };
  }
  const kill = signalGroup(pgid, 'SIGKILL');
  if (kill.error !== undefined) return { termSent: true, killSent: false, groupEmpty: false, error: kill.error };
  const groupEmpty = !kill.sent || (await waitForEmptyGroup(pgid, KILL_SETTLE_MS));
  return { termSent: true, killSent: kill.sent, groupEmpty };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): { sent: boolean; error?: string } {
  try {
    process.kill(-pgid, signal);
    return { sent: true };
  } catch (error) {
    // ESRCH: the group emptied between the check and the signal, which is what we wanted.
    if (errorCode(error) === 'ESRCH') return { sent: false };
    return { sent: false, error: `${signal} to process group ${pgid} failed: ${errorMessage(error)}` };
  }
}

async function waitForEmptyGroup(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + Math.max(0, timeoutMs);
  for (;;) {
    if (!isProcessGroupAlive(pgid)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(KILL_POLL_MS, left)));
  }
}

/**
 * Whether the process exists (signal 0; EPERM counts as alive). Zombies count as dead: an orphan is
 * reaped only if PID 1 reaps, which container init processes often do not.
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errorCode(error) !== 'EPERM') return false;
  }
  const stat = readProcStat(pid);
  return stat === undefined || !isDeadState(stat.state);
}

/** Whether any live (non-zombie) process is in the group. Falls back to signal 0 where /proc is missing. */
export function isProcessGroupAlive(pgid: number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 0) return false;
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if (errorCode(error) !== 'EPERM') return false;
  }
  const members = listProcessGroupMembers(pgid);
  return members === undefined || members.length > 0;
}

/** One line of /proc/<pid>/stat, the fields this agent needs. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  /** When the process started, in clock ticks after boot (field 22). */
  startTicks: number;
}

/** Field 22 (starttime) counted from field 3 (state), the first one after the command name. */
const START_TIME_FIELD = 22 - 3;
/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs on. */
const USER_HZ = 100;
const MS_PER_SECOND = 1000;
/** btime is whole seconds, so a start time read from /proc may be up to a second early; this keeps clear of it. */
const START_TIME_MARGIN_MS = 2 * MS_PER_SECOND;

/**
 * Parses /proc/<pid>/stat. The comm field is in parentheses and may itself hold spaces and parentheses,
 * so the fields after it are found from the LAST ')'.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const [state, ppid, pgrp] = fields;
  if (state === undefined || ppid === undefined || pgrp === undefined) return undefined;
  const parsed = { pid, comm: text.slice(open + 1, close), state, ppid: Number(ppid), pgrp: Number(pgrp), startTicks: Number(fields[START_TIME_FIELD] ?? NaN) };
  return Number.isInteger(parsed.pid) && Number.isInteger(parsed.ppid) && Number.isInteger(parsed.pgrp) ? parsed : undefined;
}

function readProcStat(pid: number): ProcStat | undefined {
  try {
    // latin1: comm is raw bytes; only the ASCII fields after it matter.
    return parseProcStat(readFileSync(`${PROC_ROOT}/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

function isDeadState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** Pids of the live processes in a group, from /proc; undefined where /proc cannot be read. */
export function listProcessGroupMembers(pgid: number): number[] | undefined {
  return groupMemberStats(pgid)?.map((stat) => stat.pid);
}

/** The stat lines of the live processes in a group; undefined where /proc cannot be read. */
function groupMemberStats(pgid: number): ProcStat[] | undefined {
  let names: string[];
  try {
    names = readdirSync(PROC_ROOT);
  } catch {
    return undefined;
  }
  const members: ProcStat[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(Number(name));
    // A process that exited between readdir and read simply is not a member any more.
    if (stat !== undefined && stat.pgrp === pgid && !isDeadState(stat.state)) members.push(stat);
  }
  return members;
}

/** The boot time from /proc/stat (`btime`, seconds since the epoch), read once; undefined where /proc cannot tell. */
let bootTime: number | undefined;
function bootTimeMs(): number | undefined {
  if (bootTime !== undefined) return bootTime;
  try {
    const btime = /^btime (\d+)$/m.exec(readFileSync(`${PROC_ROOT}/stat`, 'latin1'))?.[1];
    bootTime = btime === undefined ? undefined : Number(btime) * MS_PER_SECOND;
  } catch {
    // Left unset: the next call tries again.
  }
  return bootTime;
}

/** Whether the process's environment (as it was exec'd) holds `name=value`. */
function environmentHolds(pid: number, name: string, value: string): boolean {
  try {
    return readFileSync(`${PROC_ROOT}/${pid}/environ`, 'utf8').split('\0').includes(`${name}=${value}`);
  } catch {
    return false;
  }
}

/**
 * Whether process group `pgid` still runs something of a command of instance `instanceId` started before `before`:
 * a live member that carries `KUROKO2_JOB_INSTANCE_ID=<instanceId>` in its environment and started (two seconds or
 * more) earlier. Both checks guard against pid reuse: a group that took the number later, even a retry of the same
 * instance, is left alone. False where /proc cannot be read.
 */
export function isLeftoverOf(pgid: number, instanceId: number, before: Date): boolean {
  // Most lost groups are long gone: signal 0 says so without scanning /proc.
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if (errorCode(error) === 'ESRCH') return false;
  }
  const boot = bootTimeMs();
  const members = groupMemberStats(pgid);
  if (boot === undefined || members === undefined) return false;
  return members.some((stat) => {
    if (!Number.isFinite(stat.startTicks)) return false;
    const startedAt = boot + (stat.startTicks / USER_HZ) * MS_PER_SECOND;
    return startedAt < before.getTime() - START_TIME_MARGIN_MS && environmentHolds(stat.pid, 'KUROKO2_JOB_INSTANCE_ID', String(instanceId));
  });
}

/** Node words a failed exec as "spawn /x ENOENT"; say it the way a shell user reads it. */
function spawnErrorReason(error: unknown): string {
  const code = errorCode(error);
  const text = code === undefined ? undefined : SPAWN_ERROR_TEXT[code];
  return text === undefined ? errorMessage(error) : `${text} (${code})`;
}

const SPAWN_ERROR_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ENOEXEC: 'not an executable format',
  ENOTDIR: 'a path component is not a directory',
};

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}
