/**
 * `kuroko doctor`: checks what the commands need before they are run, one line per check with ✔, ✘ and the fix, or
 * ! for what only some uses need (Chromium for the browser tests). Exits 1 when any check fails. The failures are
 * worded by the same mapping as the commands' own start-up errors (cli/startup-errors.ts).
 */
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, statSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { nodeVersionProblem } from '../bin/node-version.js';
import { ConfigError, describeError, errorMessage } from '../core/errors';
import { createDatabase, parseDatabaseUrl, redact, type DatabaseHandle } from '../db/connection';
import { readDatabaseClock } from '../db/database-clock';
import { appliedMigrationNames, migrationNames, SchemaNewerError } from '../db/migrator';
import { findChromium } from './chromium-finder';
import { lastValue, parseCliArgs } from './cli-args';
import { dataDirPaths } from './runtime/kuroko-runtime';
import { explainStartupFailure } from './startup-errors';
import { EXIT_CODE, type CliIo, type SubCommand } from './sub-command';

const USAGE = 'usage: kuroko doctor [--database-url URL] [--port N] [--host H] [--data-dir DIR] [--deploy-config FILE]';

const HELP = `${USAGE}

Checks this machine for kuroko, one line each: Node.js, the native SQLite module, the data dir (writable, free
space), the database (reachable, credentials, schema version against this build, clock skew with this host), the
HTTP port, Chromium for the browser tests, and, when AWS credentials are in the environment, the deploy config.
Exits 1 when a check fails (✘); ! marks what only some uses need.

  --database-url URL   the database of kuroko server / agent / migrate  [KUROKO_DATABASE_URL]
                       (default: the local mode's SQLite file in the data dir, when there is one)
  --port N             the HTTP port to find free (default 3000)  [PORT]
  --host H             the address to listen on (default 127.0.0.1)  [KUROKO_HOST]
  --data-dir DIR       the local mode's data dir (default .kuroko)  [KUROKO_DATA_DIR]
  --deploy-config FILE the deploy configuration of cdk deploy  [KUROKO_DEPLOY_CONFIG]
`;

const DEFAULT_PORT = 3000;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_DATA_DIR = '.kuroko';
const BYTES_PER_MB = 1024 * 1024;
/** Below this much free space a busy local mode fills the disk within days (logs and command output). */
export const MIN_FREE_MB = 200;
/** Beyond this skew between two hosts' clocks, leases, heartbeats and cron slots are misjudged. */
export const MAX_CLOCK_SKEW_MS = 2_000;
const MS_PER_SECOND = 1000;
/** Where the AWS SDK and the CDK find credentials in the environment. */
const AWS_CREDENTIAL_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'];

export const MARK = { ok: '✔', fail: '✘', note: '!' } as const;
type Mark = (typeof MARK)[keyof typeof MARK];

export interface CheckResult {
  mark: Mark;
  name: string;
  detail: string;
  fix?: string;
}

const ok = (name: string, detail: string): CheckResult => ({ mark: MARK.ok, name, detail });
const fail = (name: string, detail: string, fix: string): CheckResult => ({ mark: MARK.fail, name, detail, fix });
const note = (name: string, detail: string, fix: string): CheckResult => ({ mark: MARK.note, name, detail, fix });

/** A failure as the commands word it, or its message when it is no failure kuroko expects. */
function failed(name: string, error: unknown, command: string): CheckResult {
  const explained = explainStartupFailure(error, { command });
  return explained ? fail(name, explained.what, explained.fix) : fail(name, describeError(error), 'run the command it concerns with --debug to see more');
}

export function checkNode(version: string): CheckResult {
  const problem = nodeVersionProblem(version);
  if (problem === undefined) return ok('Node.js', `${version}`);
  const [what = '', fix = ''] = problem.trim().split('\n');
  return fail('Node.js', what.replace(/^kuroko: /, ''), fix.replace(/^\s*fix: /, ''));
}

export function checkNativeModule(): CheckResult {
  try {
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => { prepare(sql: string): { get(): unknown }; close(): void };
    const db = new Sqlite(':memory:');
    db.prepare('select 1').get();
    db.close();
    return ok('native SQLite module', 'better-sqlite3 loads');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND') return fail('native SQLite module', 'better-sqlite3 is not installed', 'run npm install in the kuroko folder');
    return failed('native SQLite module', error, 'dev');
  }
}

/** The data dir, or the nearest folder above it that exists, is a writable directory with room left. */
export function checkDataDir(dataDir: string): CheckResult {
  const name = 'data dir';
  let existing = dataDir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    if (!statSync(existing).isDirectory()) {
      return fail(name, `cannot write ${dataDir}: ${existing} is a file, not a directory`, 'choose another with --data-dir (or KUROKO_DATA_DIR)');
    }
    // Writing is the only honest test (permissions, read-only mounts, ACLs); the probe is removed at once.
    rmSync(mkdtempSync(join(existing, '.kuroko-doctor-')), { recursive: true });
    const { bavail, bsize } = statfsSync(existing);
    const freeMb = Math.floor((bavail * bsize) / BYTES_PER_MB);
    if (freeMb < MIN_FREE_MB) return fail(name, `only ${freeMb} MB free on the disk of ${existing}`, `free some space (${MIN_FREE_MB} MB or more), or choose another disk with --data-dir`);
    return ok(name, `${dataDir}${existing === dataDir ? '' : ` (created at first start, in ${existing})`}, ${freeMb} MB free`);
  } catch (error) {
    return failed(name, error, 'dev');
  }
}

/** Clock skew between this host and the database: positive when the database's clock is ahead. */
export function clockSkewMs(sentAt: number, databaseNow: number, receivedAt: number): number {
  // The database read its clock somewhere during the round trip; its middle is the best guess.
  return databaseNow - (sentAt + receivedAt) / 2;
}

export async function checkDatabase(url: string, now: () => number = Date.now): Promise<CheckResult[]> {
  const name = 'database';
  let handle: DatabaseHandle;
  try {
    const parsed = parseDatabaseUrl(url);
    if (parsed.dialect === 'sqlite' && parsed.filename !== ':memory:' && !existsSync(parsed.filename)) {
      return [ok(name, `${redact(url)} does not exist yet; it is created at first start`)];
    }
    handle = createDatabase(url);
  } catch (error) {
    return [error instanceof ConfigError ? fail(name, errorMessage(error).replace(/^invalid configuration:\n\s*- /, ''), 'fix --database-url (or KUROKO_DATABASE_URL)') : failed(name, error, 'server')];
  }
  try {
    const results: CheckResult[] = [];
    let applied: string[];
    try {
      applied = await appliedMigrationNames(handle.db);
    } catch (error) {
      return [failed(name, error, 'server')];
    }
    results.push(ok(name, `${redact(url)} answers`));
    const known = migrationNames();
    const unknown = applied.filter((migration) => !known.includes(migration));
    if (unknown.length > 0) {
      const explained = explainStartupFailure(new SchemaNewerError(unknown, known.at(-1)), { command: 'server' });
      results.push(fail('schema', explained?.what ?? '', explained?.fix ?? ''));
    } else {
      const pending = known.filter((migration) => !applied.includes(migration));
      results.push(
        ok('schema', pending.length === 0 ? `up to date (${known.at(-1)})` : `${pending.length} migration(s) to apply (${pending.join(', ')}): kuroko migrate, or the server at its start, applies them`),
      );
    }
    const sentAt = now();
    const databaseNow = await readDatabaseClock(handle.db, handle.dialect);
    const receivedAt = now();
    if (databaseNow === undefined) {
      results.push(ok('clock', 'a SQLite file shares this host\'s clock'));
    } else {
      const skew = clockSkewMs(sentAt, databaseNow.getTime(), receivedAt);
      const seconds = (Math.abs(skew) / MS_PER_SECOND).toFixed(1);
      const way = skew > 0 ? 'ahead of' : 'behind';
      results.push(
        Math.abs(skew) > MAX_CLOCK_SKEW_MS
          ? fail('clock', `the database's clock is ${seconds} s ${way} this host's`, 'synchronise both clocks with NTP (chrony or systemd-timesyncd); leases, heartbeats and cron slots depend on them agreeing')
          : ok('clock', `within ${seconds} s of the database's`),
      );
    }
    return results;
  } finally {
    await handle.close();
  }
}

export function checkPort(host: string, port: number): Promise<CheckResult> {
  const name = 'port';
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (error) => done(failed(name, error, 'dev')));
    server.listen(port, host, () => server.close(() => done(ok(name, `${host}:${port} is free`))));
  });
}

export function checkChromium(env: Readonly<Record<string, string | undefined>>): CheckResult {
  const result = findChromium({ env });
  return result.found
    ? ok('Chromium', `${result.path} (from ${result.source}), for the browser tests`)
    : note('Chromium', `${result.problem}: npm test skips the console's browser tests`, result.fix);
}

/** The deploy config parses (only its parser is loaded: no aws-cdk-lib). Checked only with AWS credentials present. */
export async function checkDeployConfig(env: Readonly<Record<string, string | undefined>>, path: string | undefined): Promise<CheckResult> {
  const name = 'deploy config';
  const credentials = AWS_CREDENTIAL_VARIABLES.filter((variable) => env[variable]);
  if (credentials.length === 0) return ok(name, 'not checked: no AWS credentials in the environment');
  const { DEPLOY_CONFIG_ENV, loadDeployConfig } = await import('../cdk/deploy-config');
  const source = path ?? (env[DEPLOY_CONFIG_ENV] || '');
  try {
    const config = loadDeployConfig({ contextPath: path, env });
    return ok(name, `${source || 'the defaults (no config named)'} parses (${config.workerQueues.length} worker queue(s))`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return fail(name, errorMessage(error).replace(/^invalid configuration:\n\s*- /, '').replace(/\n\s*- /g, '; '), `fix ${source || 'the deploy config'} (cdk/README.md describes every field)`);
  }
}

/** One line per check; a failed check's fix follows its detail. */
export function formatCheck(result: CheckResult): string {
  return `${result.mark} ${result.name}: ${result.detail}${result.fix ? ` — fix: ${result.fix}` : ''}`;
}

/** Runs every check and prints one line per check; 1 when any failed. */
export async function runDoctor(args: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCliArgs(args, ['--database-url', '--port', '--host', '--data-dir', '--deploy-config']);
  if (parsed.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  const portText = lastValue(parsed, '--port') ?? (env.PORT || String(DEFAULT_PORT));
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65_535) parsed.problems.push(`--port must be a whole number from 0 to 65535, not ${portText}`);
  if (parsed.problems.length > 0) {
    io.stderr(`kuroko doctor: ${parsed.problems.join('; ')}\n${USAGE}\n`);
    return EXIT_CODE.usage;
  }
  const dataDir = resolve(lastValue(parsed, '--data-dir') ?? (env.KUROKO_DATA_DIR || DEFAULT_DATA_DIR));
  const localDatabase = dataDirPaths(dataDir).databaseFile;
  const databaseUrl = lastValue(parsed, '--database-url') ?? (env.KUROKO_DATABASE_URL || `sqlite:${localDatabase}`);
  const host = lastValue(parsed, '--host') ?? (env.KUROKO_HOST || DEFAULT_HOST);

  const print = (results: CheckResult | CheckResult[]) => {
    const list = Array.isArray(results) ? results : [results];
    io.stdout(list.map((result) => `${formatCheck(result)}\n`).join(''));
    return list;
  };
  const results = [
    ...print(checkNode(process.version)),
    ...print(checkNativeModule()),
    ...print(checkDataDir(dataDir)),
    ...print(await checkDatabase(databaseUrl)),
    ...print(await checkPort(host, port)),
    ...print(checkChromium(env)),
    ...print(await checkDeployConfig(env, lastValue(parsed, '--deploy-config'))),
  ];
  const failures = results.filter((result) => result.mark === MARK.fail).length;
  io.stdout(failures === 0 ? 'kuroko doctor: everything checked is ready\n' : `kuroko doctor: ${failures} check(s) failed\n`);
  return failures === 0 ? EXIT_CODE.ok : EXIT_CODE.problems;
}

export const doctorCommand: SubCommand = { run: (args, io) => runDoctor(args, io) };
