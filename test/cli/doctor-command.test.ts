/**
 * `kuroko doctor` as a person runs it (bin/kuroko.js as a child process): one line per check, ✔ or ✘ with the fix,
 * exit 1 when anything failed. Against the real MariaDB, a real occupied port, a real deploy config file.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from '../../cli/chromium-finder';
import { checkDatabase, clockSkewMs, MAX_CLOCK_SKEW_MS } from '../../cli/doctor-command';
import { createDatabase } from '../../db/connection';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { createMysqlDatabase, testMysqlUrl } from '../helpers/test-database';
import { STACK_FRAME, runKuroko, type KurokoRun } from './run-kuroko';

const TEST_TIMEOUT_MS = 90_000;
/** Nothing of the machine's own AWS setup leaks into the deploy-config check unless a test sets it. */
const NO_AWS = { AWS_ACCESS_KEY_ID: '', AWS_PROFILE: '', AWS_WEB_IDENTITY_TOKEN_FILE: '', AWS_CONTAINER_CREDENTIALS_FULL_URI: '', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '', KUROKO_DATABASE_URL: '', PORT: '', KUROKO_DEPLOY_CONFIG: '' };

let scratch: string;
let database: Awaited<ReturnType<typeof createMysqlDatabase>>;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-doctor-'));
  database = await createMysqlDatabase();
  const handle = createDatabase(database.url);
  await migrateToLatest(handle.db);
  await handle.close();
});
afterAll(async () => {
  await database?.drop();
  rmSync(scratch, { recursive: true, force: true });
});

function line(run: KurokoRun, name: string): string {
  const found = run.stdout.split('\n').find((l) => l.slice(2).startsWith(`${name}:`));
  if (found === undefined) throw new Error(`no ${name} line in:\n${run.stdout}${run.stderr}`);
  return found;
}

function doctor(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<KurokoRun> {
  return runKuroko(['doctor', '--data-dir', join(scratch, 'data'), ...args], { env: { ...NO_AWS, ...env } });
}

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('kuroko doctor', () => {
  it('on a ready machine: a ✔ for every check, exit 0', async () => {
    const run = await doctor(['--database-url', database.url, '--port', '0']);
    expect(run.stderr).toBe('');
    expect(run.code, run.stdout).toBe(0);
    expect(line(run, 'Node.js')).toBe(`✔ Node.js: ${process.version}`);
    expect(line(run, 'native SQLite module')).toBe('✔ native SQLite module: better-sqlite3 loads');
    expect(line(run, 'data dir')).toMatch(/^✔ data dir: .+ MB free$/);
    expect(line(run, 'database')).toBe(`✔ database: ${database.url} answers`);
    expect(line(run, 'schema')).toBe(`✔ schema: up to date (${migrationNames().at(-1)})`);
    expect(line(run, 'clock')).toMatch(/^✔ clock: within \d+\.\d s of the database's$/);
    expect(line(run, 'port')).toBe('✔ port: 127.0.0.1:0 is free');
    expect(line(run, 'Chromium')).toMatch(/^(✔|!) Chromium: /);
    expect(line(run, 'deploy config')).toBe('✔ deploy config: not checked: no AWS credentials in the environment');
    expect(run.stdout.trim().split('\n').at(-1)).toBe('kuroko doctor: everything checked is ready');
  }, TEST_TIMEOUT_MS);

  it('a port in use, a data dir under a file, a refused user: each ✘ with its fix, exit 1, no stack', async () => {
    const taken = await listen();
    try {
      const port = (taken.address() as { port: number }).port;
      const file = join(scratch, 'a-file');
      writeFileSync(file, 'x');
      const refused = new URL(database.url);
      refused.username = 'kuroko_doctor_nobody';
      refused.password = 'wrong';
      const run = await runKuroko(['doctor', '--port', String(port), '--data-dir', join(file, 'data'), '--database-url', refused.toString()], { env: NO_AWS });
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).not.toMatch(STACK_FRAME);
      expect(line(run, 'port')).toBe(`✘ port: port ${port} is already in use (listening on 127.0.0.1:${port}) — fix: stop what holds it, or pick another port with --port N (or PORT=N)`);
      expect(line(run, 'data dir')).toMatch(/^✘ data dir: cannot write .+ is a file, not a directory — fix: choose another with --data-dir/);
      expect(line(run, 'database')).toMatch(/^✘ database: the database refused user 'kuroko_doctor_nobody' .+ — fix: check the user and password in --database-url/);
      expect(line(run, 'Node.js')).toMatch(/^✔/);
      expect(run.stdout.trim().split('\n').at(-1)).toBe('kuroko doctor: 3 check(s) failed');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, TEST_TIMEOUT_MS);

  it('an unknown database and an unreachable one', async () => {
    const unknown = new URL(testMysqlUrl());
    unknown.pathname = '/kuroko_doctor_missing';
    const missing = await doctor(['--database-url', unknown.toString(), '--port', '0']);
    expect(missing.code).toBe(1);
    expect(line(missing, 'database')).toContain("✘ database: the database server has no database 'kuroko_doctor_missing' — fix: create it (CREATE DATABASE");

    const closed = await listen();
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await doctor(['--database-url', `mysql://root@127.0.0.1:${port}/kuroko`, '--port', '0']);
    expect(unreachable.code).toBe(1);
    expect(line(unreachable, 'database')).toBe(`✘ database: cannot reach the database at 127.0.0.1:${port}: connection refused — fix: start it, or fix the host and port in --database-url (or KUROKO_DATABASE_URL)`);
  }, TEST_TIMEOUT_MS);

  it('a schema from a newer build: ✘ schema', async () => {
    const future = await createMysqlDatabase();
    try {
      const handle = createDatabase(future.url);
      await migrateToLatest(handle.db);
      await handle.close();
      const connection = await createConnection({ uri: future.url });
      await connection.query('INSERT INTO kysely_migration (name, timestamp) VALUES (?, ?)', ['9999_from_a_newer_build', new Date().toISOString()]);
      await connection.end();
      const run = await doctor(['--database-url', future.url, '--port', '0']);
      expect(run.code).toBe(1);
      expect(line(run, 'schema')).toMatch(/^✘ schema: the database schema is newer than this build: it holds migration 9999_from_a_newer_build, .+ — fix: run the newer kuroko build/);
    } finally {
      await future.drop();
    }
  }, TEST_TIMEOUT_MS);

  it('with AWS credentials in the environment: checks that the deploy config parses', async () => {
    const bad = join(scratch, 'bad-deploy.json');
    writeFileSync(bad, JSON.stringify({ stageName: 'Prod!', logRetentionDays: 31 }));
    const good = join(scratch, 'good-deploy.json');
    writeFileSync(good, JSON.stringify({ stageName: 'prod', workerQueues: [{ name: '@default' }, { name: 'batch' }] }));
    const credentials = { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example' };
    const failing = await doctor(['--port', '0', '--deploy-config', bad], credentials);
    expect(failing.code).toBe(1);
    expect(line(failing, 'deploy config')).toMatch(/^✘ deploy config: .+stageName: must be lower-case letters.+logRetentionDays: must be one of .+ — fix: fix .+bad-deploy\.json/);
    const passing = await doctor(['--port', '0'], { ...credentials, KUROKO_DEPLOY_CONFIG: good });
    expect(line(passing, 'deploy config')).toBe(`✔ deploy config: ${good} parses (2 worker queue(s))`);
  }, TEST_TIMEOUT_MS);

  it('without Chromium: a ! line naming the install, and no failure for it', async () => {
    const run = await doctor(['--port', '0'], { CHROME_PATH: join(scratch, 'no-chromium-here') });
    expect(line(run, 'Chromium')).toBe(
      `! Chromium: CHROME_PATH=${join(scratch, 'no-chromium-here')} is not an executable file: npm test skips the console's browser tests — fix: point CHROME_PATH at a Chrome or Chromium, or unset it`,
    );
    expect(run.code, run.stdout).toBe(0);
  }, TEST_TIMEOUT_MS);
});

describe('the clock check', () => {
  it('measures skew against the middle of the round trip', () => {
    expect(clockSkewMs(1_000, 1_600, 1_200)).toBe(500);
    expect(clockSkewMs(1_000, 1_000, 1_200)).toBe(-100);
  });

  it('fails when this host\'s clock is off from the real database\'s', async () => {
    const skewed = await checkDatabase(database.url, () => Date.now() - 10_000);
    const clock = skewed.find((r) => r.name === 'clock');
    expect(clock?.mark).toBe('✘');
    expect(clock?.detail).toMatch(/^the database's clock is 1\d\.\d s ahead of this host's$/);
    expect(MAX_CLOCK_SKEW_MS).toBeLessThan(10_000);
    const fine = await checkDatabase(database.url);
    expect(fine.find((r) => r.name === 'clock')?.mark).toBe('✔');
  });
});

describe('findChromium', () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'kuroko-home-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  function fakeBrowser(path: string): void {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, '#!/bin/sh\n');
    chmodSync(path, 0o755);
  }

  it('finds Playwright\'s cache (newest revision) when nothing else has one, and names the install when empty', () => {
    const search = { env: { PATH: '' }, home, systemPaths: [] };
    const none = findChromium(search);
    expect(none).toEqual({ found: false, problem: `no Chromium in CHROME_PATH, /usr/bin/chromium, PATH or ${join(home, '.cache/ms-playwright')}`, fix: expect.stringContaining('apt-get install chromium') });
    fakeBrowser(join(home, '.cache/ms-playwright/chromium-1179/chrome-linux/chrome'));
    fakeBrowser(join(home, '.cache/ms-playwright/chromium-1200/chrome-linux64/chrome'));
    expect(findChromium(search)).toEqual({ found: true, path: join(home, '.cache/ms-playwright/chromium-1200/chrome-linux64/chrome'), source: "Playwright's cache" });
  });

  it('takes PATH before the cache, a system package before PATH, and CHROME_PATH before all', () => {
    const bin = join(home, 'bin');
    fakeBrowser(join(bin, 'chromium'));
    const system = join(home, 'usr-bin-chromium');
    fakeBrowser(system);
    expect(findChromium({ env: { PATH: bin }, home, systemPaths: [] })).toMatchObject({ path: join(bin, 'chromium'), source: 'PATH' });
    expect(findChromium({ env: { PATH: bin }, home, systemPaths: [system] })).toMatchObject({ path: system, source: 'the system package' });
    expect(findChromium({ env: { PATH: bin, CHROME_PATH: system }, home, systemPaths: [] })).toMatchObject({ path: system, source: 'CHROME_PATH' });
  });
});
