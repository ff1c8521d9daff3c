/** Starts the real local mode (`kuroko dev`) as a child process on a free port and a temporary data dir. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait-for';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;

export interface LocalModeProcess {
  url: string;
  dataDir: string;
  /** `Authorization` header value of the generated admin client. */
  authorization: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** JSON request against the API with the admin client's credentials. */
  api<T = unknown>(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T }>;
  /** Removes the data dir (call after stop). */
  cleanup(): void;
}

export interface StartLocalModeOptions {
  dataDir?: string;
  env?: Record<string, string>;
  args?: string[];
  /** `npm start` instead of `node bin/kuroko.js dev`. */
  viaNpm?: boolean;
}

/** Starts `kuroko dev` and waits until it prints its URL and the API answers. */
export async function startLocalMode(options: StartLocalModeOptions = {}): Promise<LocalModeProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kuroko-dev-'));
  const args = ['--port', '0', '--data-dir', dataDir, ...(options.args ?? [])];
  const child = options.viaNpm
    ? spawn('npm', ['start', '--silent', '--', ...args], { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn(process.execPath, [join(ROOT, 'bin/kuroko.js'), 'dev', ...args], { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  // 'close', not 'exit': stdout is read after a stop ("stopped"), and its last chunk can arrive after the exit is
  // reported; with npm start, npm itself may also exit before the node process it runs has closed its output.
  const exited = new Promise<number | null>((resolveExit) => child.once('close', (code) => resolveExit(code)));
  // The banner's last line: the URL and the credentials above it are complete once it is there.
  await waitFor(() => /Ctrl-C stops it cleanly/.test(out) || child.exitCode !== null, {
    timeoutMs: STARTUP_TIMEOUT_MS,
    description: 'kuroko dev to start',
  }).catch((error: unknown) => {
    // The stderr of the moment it timed out (a description is fixed when the wait begins, with nothing in it yet).
    throw new Error(`${String(error)} (stderr: ${err.slice(-500)})`, { cause: error });
  });
  const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
  if (!url) {
    // All of stderr, which can still be on its way when the exit is seen.
    await exited;
    throw new Error(`kuroko dev exited early: ${err}`);
  }
  const credentials = /curl -u (\S+):(\S+) /.exec(out);
  const client = options.env?.KUROKO_API_CLIENTS?.split(',')[0]?.split(':');
  const [name, secret] = credentials ? [credentials[1], credentials[2]] : [client?.[0], client?.[1]];
  const authorization = `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
  return {
    url,
    dataDir,
    authorization,
    child,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          // npm start runs node under a shell: signal the whole group, as a terminal's Ctrl-C does.
          process.kill(options.viaNpm ? -child.pid : child.pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      }
      return exited;
    },
    async api(path, init = {}) {
      const response = await fetch(`${url}${path}`, {
        method: init.method ?? 'GET',
        headers: { authorization, 'content-type': 'application/json', ...init.headers },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}
