/**
 * Every failure `kuroko` can foresee at start, met for real by the real command (bin/kuroko.js as a child process):
 * it exits non-zero and prints what failed and what to do, without a stack trace unless asked with --debug.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/connection';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { createMysqlDatabase, testMysqlUrl } from '../helpers/test-database';
import { ROOT, STACK_FRAME, runKuroko, type KurokoRun } from './run-kuroko';

const FAILED = 1;
const TEST_TIMEOUT_MS = 90_000;

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-startup-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** The failure is reported in two lines, what and fix, with the hint in them and no stack frame. */
function expectExplained(run: KurokoRun, command: string, ...hints: (string | RegExp)[]): void {
  expect(run.signal, `kuroko ${command} did not exit by itself:\n${run.stderr}`).toBeNull();
  expect(run.code, run.stderr).toBe(FAILED);
  expect(run.stderr).not.toMatch(STACK_FRAME);
  expect(run.stderr).toMatch(new RegExp(`^kuroko ${command}: .+\\n  fix: .+\\n$`));
  for (const hint of hints) {
    if (typeof hint === 'string') expect(run.stderr).toContain(hint);
    else expect(run.stderr).toMatch(hint);
  }
}

function listen(host = '127.0.0.1'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** A port on which nothing listens: one the kernel handed out and that was closed again. */
async function closedPort(): Promise<number> {
  const server = await listen();
  const port = portOf(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function asRoot(statement: string, values: unknown[] = []): Promise<void> {
  const admin = new URL(testMysqlUrl());
  admin.pathname = '/';
  const connection = await createConnection({ uri: admin.toString() });
  try {
    await connection.query(statement, values);
  } finally {
    await connection.end();
  }
}

function withCredentials(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

describe('the port', () => {
  it('in use: kuroko dev names the port and --port / PORT', async () => {
    const taken = await listen();
    try {
      const port = portOf(taken);
      const run = await runKuroko(['dev', '--port', String(port), '--data-dir', join(scratch, 'port-taken'), '--agents', '0']);
      expectExplained(run, 'dev', `port ${port} is already in use`, '--port', 'PORT=');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, TEST_TIMEOUT_MS);

  it('in use: --debug (and KUROKO_DEBUG=1) add the stack trace', async () => {
    const taken = await listen();
    try {
      const port = String(portOf(taken));
      const debug = await runKuroko(['dev', '--port', port, '--data-dir', join(scratch, 'port-debug'), '--agents', '0', '--debug']);
      expect(debug.code).toBe(FAILED);
      expect(debug.stderr).toContain(`port ${port} is already in use`);
      expect(debug.stderr).toMatch(STACK_FRAME);
      expect(debug.stderr).toContain('EADDRINUSE');
      const fromEnv = await runKuroko(['dev', '--port', port, '--data-dir', join(scratch, 'port-debug'), '--agents', '0'], { env: { KUROKO_DEBUG: '1' } });
      expect(fromEnv.stderr).toMatch(STACK_FRAME);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, TEST_TIMEOUT_MS);

  it('an address not on this machine: kuroko dev names --host', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a host.
    const run = await runKuroko(['dev', '--host', '192.0.2.1', '--port', '0', '--data-dir', join(scratch, 'no-address'), '--agents', '0']);
    expectExplained(run, 'dev', 'cannot listen on 192.0.2.1', '--host');
  }, TEST_TIMEOUT_MS);
});

describe('the data dir', () => {
  it('under a regular file: kuroko dev says which path and names --data-dir', async () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const run = await runKuroko(['dev', '--port', '0', '--data-dir', join(file, 'data'), '--agents', '0']);
    expectExplained(run, 'dev', `cannot write ${join(file, 'data')}`, 'not a directory', '--data-dir');
  }, TEST_TIMEOUT_MS);

  it('without write permission (chmod 500): kuroko dev says permission denied and names --data-dir', async () => {
    const parent = join(scratch, 'read-only');
    mkdirSync(parent);
    chmodSync(parent, 0o500);
    // Root passes every permission check through CAP_DAC_OVERRIDE, so a root test runner drops it for the command.
    const root = process.getuid?.() === 0;
    const run = await runKuroko(['dev', '--port', '0', '--data-dir', join(parent, 'data'), '--agents', '0'], { withoutPermissionBypass: root });
    expectExplained(run, 'dev', `cannot write ${join(parent, 'data')}`, 'permission denied', '--data-dir');
  }, TEST_TIMEOUT_MS);
});

describe('the log dir of kuroko server', () => {
  it('under a regular file: names --log-dir, and exits although its database pool was open', async () => {
    const database = await createMysqlDatabase();
    try {
      const file = join(scratch, 'another-file');
      writeFileSync(file, 'not a directory\n');
      const run = await runKuroko(['server', '--port', '0', '--agents', '1', '--log-dir', join(file, 'logs'), '--database-url', database.url]);
      expectExplained(run, 'server', `cannot write ${join(file, 'logs')}`, '--log-dir');
    } finally {
      await database.drop();
    }
  }, TEST_TIMEOUT_MS);
});

describe('the MariaDB', () => {
  const user = `kuroko_t_${randomBytes(4).toString('hex')}`;
  let database: Awaited<ReturnType<typeof createMysqlDatabase>>;
  beforeAll(async () => {
    database = await createMysqlDatabase();
    await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', 'the-right-one']);
    await asRoot(`GRANT ALL ON \`${database.name}\`.* TO ?@?`, [user, '%']);
  });
  afterAll(async () => {
    await asRoot('DROP USER IF EXISTS ?@?', [user, '%']);
    await database?.drop();
  });

  it('a wrong password: the database refused user X, check --database-url', async () => {
    // The user is real: with its password, migrate works.
    const right = await runKuroko(['migrate', '--database-url', withCredentials(database.url, user, 'the-right-one')]);
    expect(right.code, right.stderr).toBe(0);
    const wrong = await runKuroko(['server', '--port', '0', '--database-url', withCredentials(database.url, user, 'a-wrong-one')]);
    expectExplained(wrong, 'server', `the database refused user '${user}'`, 'password', '--database-url');
    expect(wrong.stderr).not.toContain('a-wrong-one');
  }, TEST_TIMEOUT_MS);

  it('an unknown database: says which, with the CREATE DATABASE to run', async () => {
    const missing = `kuroko_missing_${randomBytes(4).toString('hex')}`;
    const url = new URL(testMysqlUrl());
    url.pathname = `/${missing}`;
    const run = await runKuroko(['migrate', '--database-url', url.toString()]);
    expectExplained(run, 'migrate', `no database '${missing}'`, `CREATE DATABASE \`${missing}\``);
  }, TEST_TIMEOUT_MS);

  it('unreachable (a closed port): server, agent, migrate and api-client name host:port and --database-url', async () => {
    const port = await closedPort();
    const url = `mysql://root@127.0.0.1:${port}/kuroko`;
    for (const [command, args] of [
      ['server', ['--port', '0']],
      ['agent', ['--log-dir', join(scratch, 'agent-logs')]],
      ['migrate', []],
      ['api-client', ['create', 'deploy-bot']],
    ] as const) {
      const run = await runKuroko([command, ...args, '--database-url', url]);
      expectExplained(run, command, `cannot reach the database at 127.0.0.1:${port}`, '--database-url');
    }
  }, TEST_TIMEOUT_MS);

  it('a schema newer than this build: every command refuses, and nothing is migrated down', async () => {
    const future = await createMysqlDatabase();
    try {
      const handle = createDatabase(future.url);
      await migrateToLatest(handle.db);
      await handle.close();
      const newer = '9999_from_a_newer_build';
      await asRoot(`INSERT INTO \`${future.name}\`.kysely_migration (name, timestamp) VALUES (?, ?)`, [newer, new Date().toISOString()]);
      for (const [command, args] of [
        ['server', ['--port', '0']],
        ['migrate', []],
        ['agent', ['--log-dir', join(scratch, 'agent-logs')]],
      ] as const) {
        const run = await runKuroko([command, ...args, '--database-url', future.url]);
        expectExplained(run, command, 'schema is newer than this build', newer, 'no build ever migrates a schema down');
      }
      const check = await createConnection({ uri: future.url });
      try {
        const [rows] = await check.query('SELECT name FROM kysely_migration ORDER BY name');
        expect((rows as { name: string }[]).map((r) => r.name)).toEqual([...migrationNames(), newer]);
      } finally {
        await check.end();
      }
    } finally {
      await future.drop();
    }
  }, TEST_TIMEOUT_MS);
});

describe('the native SQLite module', () => {
  let install: string;
  const skipped = new Set(['node_modules', '.git', 'test', 'infra-tests', 'bench', 'cdk.out', '.kuroko', 'dist', 'test-results']);

  /**
   * A copy of kuroko whose node_modules is the real one except for better-sqlite3, which is copied without its
   * build (`binary` decides what stands in build/Release/better_sqlite3.node). Sources are copied, not linked:
   * Node resolves packages from a module's real path.
   */
  function installWith(name: string, binary: string | undefined): string {
    const dir = join(install, name);
    for (const entry of readdirSync(ROOT)) if (!skipped.has(entry)) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
      if (entry !== 'better-sqlite3') symlinkSync(join(ROOT, 'node_modules', entry), join(modules, entry));
    }
    const native = join(modules, 'better-sqlite3');
    mkdirSync(native);
    cpSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), join(native, 'package.json'));
    cpSync(join(ROOT, 'node_modules/better-sqlite3/lib'), join(native, 'lib'), { recursive: true });
    if (binary !== undefined) {
      mkdirSync(join(native, 'build/Release'), { recursive: true });
      writeFileSync(join(native, 'build/Release/better_sqlite3.node'), binary);
    }
    return dir;
  }

  beforeAll(() => {
    install = mkdtempSync(join(tmpdir(), 'kuroko-native-'));
  });
  afterAll(() => {
    rmSync(install, { recursive: true, force: true });
  });

  it('that cannot be loaded (a broken binary): says npm rebuild better-sqlite3', async () => {
    const dir = installWith('broken', 'this is not a shared object\n');
    const run = await runKuroko(['dev', '--port', '0', '--data-dir', join(dir, '.kuroko'), '--agents', '0'], { bin: join(dir, 'bin/kuroko.js'), cwd: dir });
    expectExplained(run, 'dev', 'the native SQLite module (better-sqlite3) cannot be loaded', 'npm rebuild better-sqlite3');
  }, TEST_TIMEOUT_MS);

  it('that was never built: says npm rebuild better-sqlite3', async () => {
    const dir = installWith('unbuilt', undefined);
    expect(existsSync(join(dir, 'node_modules/better-sqlite3/build'))).toBe(false);
    const run = await runKuroko(['dev', '--port', '0', '--data-dir', join(dir, '.kuroko'), '--agents', '0'], { bin: join(dir, 'bin/kuroko.js'), cwd: dir });
    expectExplained(run, 'dev', 'was never built', 'npm rebuild better-sqlite3');
  }, TEST_TIMEOUT_MS);
});

describe('Node.js', () => {
  it('older than supported: bin/kuroko.js refuses before loading anything, naming the version needed', async () => {
    const run = await runKuroko(['dev', '--port', '0', '--data-dir', join(scratch, 'old-node')], {
      // The real bin/kuroko.js on this Node.js, told it runs on 18.
      nodeArgs: ['--import', 'data:text/javascript,Object.defineProperty(process, "version", { value: "v18.20.4" });'],
    });
    expect(run.code).toBe(FAILED);
    expect(run.stderr).toBe(
      'kuroko: Node.js v18.20.4 is too old: kuroko needs Node.js 20 or later.\n' +
        '  fix: install Node.js 20 or later (https://nodejs.org/, or your version manager: nvm install 20), then run kuroko again\n',
    );
    expect(existsSync(join(scratch, 'old-node'))).toBe(false);
  }, TEST_TIMEOUT_MS);
});
