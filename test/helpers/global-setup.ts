/**
 * Vitest global setup: finds the MySQL/MariaDB the database tests use and publishes its URL as
 * `inject('mysqlUrl')` (and KUROKO_TEST_MYSQL_URL for child processes).
 *
 * Order: KUROKO_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test) if something answers there; otherwise
 * a throwaway mariadbd started from the installed binary in a temporary folder on a free port, stopped at
 * teardown. With neither, `mysqlUnavailable` carries a one-line reason and every MySQL / Data API test fails with
 * it (nothing is skipped silently), while tests that need no MySQL still run.
 *
 * It also migrates the run's template databases once (test/helpers/database-template.ts): a SQLite file and, with
 * a MySQL, a database `kuroko_test_<run>_template`; test databases are copies of them (`inject('databaseTemplates')`).
 * The teardown drops every `kuroko_test_<run>_…` database left, the template and the databases `reuse` kept.
 * A run of the `unit` project alone (`npm run test:fast`) needs no database: it looks for none and migrates nothing.
 */
import { installDataDir, MARIADBD, mariadbdArgs } from './mariadbd';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import type { TestProject } from 'vitest/node';
import { findChromium, REQUIRE_CHROMIUM_ENV } from '../../cli/chromium-finder';
import { createMysqlTemplate, createSqliteTemplate, dropDatabasesNamed } from './database-template';
import type { DatabaseTemplates } from './database-template';
import { freePort } from './free-port';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server-level URL of the MySQL/MariaDB for database tests ('' when none could be found or started). */
    mysqlUrl: string;
    /** Why there is no MySQL, when there is none. */
    mysqlUnavailable: string;
    /** The run's migrated templates, which test databases copy. */
    databaseTemplates: DatabaseTemplates;
  }
}

export const DEFAULT_TEST_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';
const PROBE_TIMEOUT_MS = 2_000;
const START_TIMEOUT_MS = 60_000;
const START_POLL_MS = 200;
const STOP_TIMEOUT_MS = 20_000;
const RUN_ID_BYTES = 4;
/** The project whose tests touch no database and start no process (vitest.config.ts). */
const UNIT_PROJECT = 'unit';

/** True when a MySQL server accepts a connection at `url` (without selecting its database). */
async function answers(url: string): Promise<boolean> {
  const serverUrl = new URL(url);
  serverUrl.pathname = '/';
  try {
    const connection = await createConnection({ uri: serverUrl.toString(), connectTimeout: PROBE_TIMEOUT_MS });
    await connection.end();
    return true;
  } catch {
    return false;
  }
}


interface ThrowawayMariadb {
  url: string;
  stop(): Promise<void>;
}

async function startThrowawayMariadb(): Promise<ThrowawayMariadb> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-mariadb-'));
  let dataDir: string;
  try {
    dataDir = installDataDir(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  const child: ChildProcess = spawn(
    MARIADBD,
    mariadbdArgs(dir, dataDir, port),
    { stdio: 'ignore' },
  );
  const url = `mysql://root@127.0.0.1:${port}/test`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`throwaway mariadbd did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, START_POLL_MS));
  }
  return { url, stop };
}

/** Finds or starts MySQL; returns its URL, or why there is none, and the throwaway server to stop. */
async function findMysql(): Promise<{ url: string; unavailable: string; throwaway?: ThrowawayMariadb }> {
  const configured = process.env.KUROKO_TEST_MYSQL_URL || DEFAULT_TEST_MYSQL_URL;
  if (await answers(configured)) return { url: configured, unavailable: '' };
  if (!existsSync(MARIADBD)) {
    return {
      url: '',
      unavailable:
        `nothing answers at ${configured} and there is no ${MARIADBD}: ` +
        'install one with `apt-get install mariadb-server` or set KUROKO_TEST_MYSQL_URL',
    };
  }
  try {
    const throwaway = await startThrowawayMariadb();
    return { url: throwaway.url, unavailable: '', throwaway };
  } catch (err) {
    return { url: '', unavailable: `nothing answers at ${configured} and starting ${MARIADBD} failed: ${(err as Error).message}` };
  }
}

/** Finds or starts MySQL, migrates the templates and provides both to the tests; returns the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const unitOnly = project.vitest.projects.every((p) => p.name === UNIT_PROJECT);
  const { url, unavailable, throwaway } = unitOnly
    ? { url: '', unavailable: `the ${UNIT_PROJECT} project runs without a database`, throwaway: undefined }
    : await findMysql();
  if (unavailable && !unitOnly) console.error(`[global-setup] MySQL and Data API tests will fail: ${unavailable}`);
  project.provide('mysqlUrl', url);
  project.provide('mysqlUnavailable', unavailable);
  process.env.KUROKO_TEST_MYSQL_URL = url || process.env.KUROKO_TEST_MYSQL_URL || DEFAULT_TEST_MYSQL_URL;

  const runPrefix = `kuroko_test_${randomBytes(RUN_ID_BYTES).toString('hex')}_`;
  const templates: DatabaseTemplates = { runPrefix };
  let removeSqliteTemplate = () => {};
  if (!unitOnly) {
    // A migration that fails here fails the run at once, with its name, instead of in every database test.
    const [sqlite, mysql] = await Promise.allSettled([createSqliteTemplate(), url ? createMysqlTemplate(url, `${runPrefix}template`) : undefined]);
    if (sqlite.status === 'rejected' || mysql.status === 'rejected') {
      if (sqlite.status === 'fulfilled') sqlite.value.remove();
      if (url) await dropDatabasesNamed(url, runPrefix);
      await throwaway?.stop();
      throw sqlite.status === 'rejected' ? sqlite.reason : (mysql as PromiseRejectedResult).reason;
    }
    templates.sqlite = sqlite.value.path;
    removeSqliteTemplate = sqlite.value.remove;
    if (mysql.value) templates.mysql = mysql.value;
  }
  project.provide('databaseTemplates', templates);

  // The browser suites skip without Chromium (test/console/browser-fixtures.ts); say so at the start and the end
  // of the run, where nobody can miss it.
  const chromium = findChromium({ env: process.env });
  const chromiumNotice =
    chromium.found || unitOnly
      ? undefined
      : `\n*** ${process.env[REQUIRE_CHROMIUM_ENV] ? 'FAILING' : 'SKIPPED'}: the console's browser tests, for lack of Chromium (${chromium.problem}). To run them, ${chromium.fix}. ***\n`;
  if (chromiumNotice) console.error(chromiumNotice);
  return async () => {
    if (url) await dropDatabasesNamed(url, runPrefix);
    removeSqliteTemplate();
    await throwaway?.stop();
    if (chromiumNotice) console.error(chromiumNotice);
  };
}
