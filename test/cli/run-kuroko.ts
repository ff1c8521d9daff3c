/** Runs the real `bin/kuroko.js` as a child process, the way a person types it, and collects what it printed. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = resolve(ROOT, 'bin/kuroko.js');

/** A stack frame line as Node prints it; a start-up failure must show none without --debug. */
export const STACK_FRAME = /^\s+at /m;

export interface KurokoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunKurokoOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra arguments for node itself (before the script). */
  nodeArgs?: readonly string[];
  /** Run this script instead of the worktree's bin/kuroko.js (a copied install). */
  bin?: string;
  /**
   * Run as root without the capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a
   * chmod 500 directory refuses root as it refuses anyone: `setpriv` drops them from the bounding set.
   */
  withoutPermissionBypass?: boolean;
  cwd?: string;
  /** A command that should fail at start and exit; killed (and reported as such) after this long. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 45_000;

/** Runs `node bin/kuroko.js ...args` and resolves once it exits (or was killed after the timeout). */
export function runKuroko(args: readonly string[], options: RunKurokoOptions = {}): Promise<KurokoRun> {
  const nodeCommand = [...(options.nodeArgs ?? []), options.bin ?? BIN, ...args];
  const [command, commandArgs] = options.withoutPermissionBypass
    ? ['setpriv', ['--bounding-set=-dac_override,-dac_read_search', process.execPath, ...nodeCommand]]
    : [process.execPath, nodeCommand];
  return new Promise((done, fail) => {
    const child = spawn(command, commandArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, KUROKO_DEBUG: '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}
