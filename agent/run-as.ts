/**
 * `--run-as USER`: the agent (root, or holding CAP_SETUID, CAP_SETGID and CAP_KILL) runs every command as another,
 * unprivileged user, so a command cannot read the agent's configuration, credentials or data folder.
 *
 * The switch itself is spawn's `uid`/`gid`: in the child, before exec, libuv calls setgroups(0, NULL), setgid and
 * setuid. So a command runs with the user's uid and primary group and NO supplementary groups (Node cannot set
 * them), and a root agent's capabilities are all dropped by the kernel on the way (capabilities(7): a change of
 * every uid from 0 to nonzero clears the permitted, effective and ambient sets).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, errorMessage } from '../core/errors';

/** The user commands run as, resolved once at start. */
export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
  /** From the password database; the command's HOME and working directory. */
  home: string;
}

/** A user name or number as `getent passwd` takes them (POSIX portable names, or digits). */
const USER_NAME = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;
const PASSWD_FIELDS = 7;
/** How long the start-up probe waits for its child to start and to die. */
const PROBE_TIMEOUT_MS = 5_000;

/** Parses one line of the password database (`name:x:uid:gid:gecos:home:shell`). */
export function parsePasswdLine(line: string): RunAsUser | undefined {
  const fields = line.trim().split(':');
  if (fields.length < PASSWD_FIELDS) return undefined;
  const [name, , uid, gid, , home] = fields;
  const user = { name: name ?? '', uid: Number(uid), gid: Number(gid), home: home ?? '' };
  return user.name !== '' && Number.isSafeInteger(user.uid) && Number.isSafeInteger(user.gid) ? user : undefined;
}

/**
 * Looks `nameOrUid` up in the password database: `getent passwd` (which also asks LDAP, SSSD ...), else
 * /etc/passwd. Undefined when there is no such user.
 */
export function lookUpUser(nameOrUid: string): RunAsUser | undefined {
  if (!USER_NAME.test(nameOrUid)) return undefined;
  let lines: string[];
  try {
    lines = [execFileSync('getent', ['passwd', nameOrUid], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })];
  } catch (error) {
    // getent exits 2 for "no such key"; anything else (ENOENT: no getent) falls back to the file.
    if ((error as { status?: unknown }).status === 2) return undefined;
    try {
      lines = readFileSync('/etc/passwd', 'utf8').split('\n');
    } catch {
      return undefined;
    }
  }
  const numeric = /^\d+$/.test(nameOrUid) ? Number(nameOrUid) : undefined;
  return lines
    .map(parsePasswdLine)
    .find((user) => user !== undefined && (user.name === nameOrUid || user.uid === numeric));
}

/**
 * Resolves `--run-as` and proves at start that it works: the user exists, is neither root nor the agent's own
 * user, and the agent can start a process as that user and kill it. Throws a ConfigError saying what is wrong.
 */
export async function prepareRunAs(nameOrUid: string, shellPath: string): Promise<RunAsUser> {
  const user = lookUpUser(nameOrUid);
  if (user === undefined) throw new ConfigError([`--run-as: no user ${JSON.stringify(nameOrUid)} on this host`]);
  if (user.uid === 0) throw new ConfigError([`--run-as: ${user.name} is root; commands must run as an unprivileged user`]);
  const own = process.getuid?.();
  if (own === user.uid) {
    throw new ConfigError([`--run-as: the agent already runs as ${user.name} (uid ${user.uid}); run the agent as root (or with CAP_SETUID) and its commands as another user`]);
  }
  const spawnProblem = probeSpawn(user, shellPath);
  if (spawnProblem !== undefined) throw new ConfigError([spawnProblem]);
  const killProblem = await probeKill(user, shellPath);
  if (killProblem !== undefined) throw new ConfigError([killProblem]);
  return user;
}

const cannotSwitch = (user: RunAsUser, reason: string): string =>
  `--run-as: the agent (uid ${process.getuid?.() ?? '?'}) cannot start commands as ${user.name} (uid ${user.uid}): ${reason}; run it as root or with CAP_SETUID and CAP_SETGID`;

function probeSpawn(user: RunAsUser, shellPath: string): string | undefined {
  const probe = spawnSync(shellPath, ['-c', 'id -u'], { uid: user.uid, gid: user.gid, cwd: '/', env: {}, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  if (probe.error !== undefined) return cannotSwitch(user, errorMessage(probe.error));
  if (probe.status !== 0) return cannotSwitch(user, `${shellPath} exited with ${probe.status ?? probe.signal}`);
  if (probe.stdout.trim() !== String(user.uid)) return cannotSwitch(user, `the probe ran as uid ${probe.stdout.trim()}`);
  return undefined;
}

/** Starts a long sleep as the user in its own group and kills the group, as the agent does to cancel a command. */
async function probeKill(user: RunAsUser, shellPath: string): Promise<string | undefined> {
  const child = spawn(shellPath, ['-c', 'exec sleep 60'], { uid: user.uid, gid: user.gid, cwd: '/', env: {}, detached: true, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exited;
    return cannotSwitch(user, 'the probe process did not start');
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    // Leave nothing behind that the agent could not kill: the probe's own sleep ends within a minute.
    child.unref();
    return `--run-as: the agent cannot signal the processes of ${user.name} (${errorMessage(error)}), so it could not cancel their commands; run it as root or with CAP_KILL`;
  }
  const timeout = new AbortController();
  // Unreferenced: the probe must not keep the agent alive.
  const timedOut = sleep(PROBE_TIMEOUT_MS, 'timeout' as const, { ref: false, signal: timeout.signal }).catch(() => undefined);
  const outcome = await Promise.race([exited, timedOut]);
  timeout.abort();
  if (outcome === 'timeout') return `--run-as: a process of ${user.name} did not die from SIGKILL`;
  return undefined;
}

/** The working directory of a command run as `user`: its home when that is a folder, else `/`. */
export function runAsWorkingDirectory(user: RunAsUser): string {
  try {
    return statSync(user.home).isDirectory() ? user.home : '/';
  } catch {
    return '/';
  }
}
