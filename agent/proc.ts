/**
 * What the agent reads from the operating system about processes: whether a process or a process group is still
 * there (signal 0, then /proc to tell zombies apart), the members of a group, and whether a group still runs
 * something of a lost command (start time and environment). Linux reads /proc; elsewhere the answers fall back to
 * signal 0 alone. Memory is read by memory-sampler.ts over listProcessGroupMembers.
 */
import { readdirSync, readFileSync } from 'node:fs';

const PROC_ROOT = '/proc';
/** Field 22 (starttime) counted from field 3 (state), the first one after the command name. */
const START_TIME_FIELD = 22 - 3;
/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs on. */
const USER_HZ = 100;
const MS_PER_SECOND = 1000;
/** btime is whole seconds, so a start time read from /proc may be up to a second early; this keeps clear of it. */
const START_TIME_MARGIN_MS = 2 * MS_PER_SECOND;

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

/** The `code` of a Node system error (ENOENT, ESRCH, EPERM ...), if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
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
    if (errnoCode(error) !== 'EPERM') return false;
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
    if (errnoCode(error) !== 'EPERM') return false;
  }
  const members = listProcessGroupMembers(pgid);
  return members === undefined || members.length > 0;
}

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
const bootTime: { ms: number | undefined } = { ms: undefined };
function bootTimeMs(): number | undefined {
  if (bootTime.ms !== undefined) return bootTime.ms;
  try {
    const btime = /^btime (\d+)$/m.exec(readFileSync(`${PROC_ROOT}/stat`, 'latin1'))?.[1];
    bootTime.ms = btime === undefined ? undefined : Number(btime) * MS_PER_SECOND;
  } catch {
    // Left unset: the next call tries again.
  }
  return bootTime.ms;
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
    if (errnoCode(error) === 'ESRCH') return false;
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
