/**
 * The failures the child-process tests (startup-failures.test.ts) cannot meet on this machine, checked on the
 * error shapes Node and the drivers really produce: a native module built for another Node.js, a full disk. And the
 * guard's own rules: unexpected errors say where to report them, stacks only in debug mode, the Node.js check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BadRequestException, DatabaseResumingException } from '@aws-sdk/client-rds-data';
import { describe, expect, it } from 'vitest';
import { MINIMUM_NODE_MAJOR, nodeVersionProblem } from '../../bin/node-version.js';
import { reportFailure, runGuarded, takeDebugFlag } from '../../cli/command-guard';
import { explainStartupFailure, REPORT_HINT } from '../../cli/startup-errors';
import { main } from '../../cli/main';
import { STACK_FRAME } from './run-kuroko';

function collect(): { io: { stdout: (t: string) => void; stderr: (t: string) => void }; err: () => string } {
  let err = '';
  return { io: { stdout: () => undefined, stderr: (t) => void (err += t) }, err: () => err };
}

describe('explainStartupFailure', () => {
  it('a native module built for another Node.js (ERR_DLOPEN_FAILED, the message of Node\'s src/node_binding.cc)', () => {
    const file = '/srv/kuroko/node_modules/better-sqlite3/build/Release/better_sqlite3.node';
    const error = Object.assign(
      new Error(
        `The module '${file}'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 127. This version of Node.js requires\nNODE_MODULE_VERSION 115. Please try re-compiling or re-installing\nthe module (for instance, using \`npm rebuild\` or \`npm install\`).`,
      ),
      { code: 'ERR_DLOPEN_FAILED' },
    );
    const explained = explainStartupFailure(new Error('database migration failed: ...', { cause: error }), { command: 'dev' });
    expect(explained?.what).toBe(`the native SQLite module (better-sqlite3) was built for another Node.js version (NODE_MODULE_VERSION 127; Node.js ${process.versions.node} needs 115)`);
    expect(explained?.fix).toContain('npm rebuild better-sqlite3');
  });

  it('a full disk (the ENOSPC a write to /dev/full really throws)', () => {
    let thrown: unknown;
    try {
      writeFileSync('/dev/full', 'x');
    } catch (error) {
      thrown = error;
    }
    expect((thrown as NodeJS.ErrnoException).code).toBe('ENOSPC');
    const explained = explainStartupFailure(thrown, { command: 'dev' });
    expect(explained?.what).toMatch(/^the disk is full/);
    expect(explained?.fix).toContain('--data-dir');
  });

  it('SQLite\'s own full-disk code', () => {
    const error = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    expect(explainStartupFailure(error, { command: 'dev' })?.what).toMatch(/^the disk is full/);
  });

  it('the RDS Data API refusing (the SDK\'s own exception classes)', () => {
    const refused = new BadRequestException({ message: 'Database kuroko does not exist', $metadata: { httpStatusCode: 400 } });
    const explained = explainStartupFailure(new Error('database migration failed', { cause: refused }), { command: 'server' });
    expect(explained?.what).toBe('the RDS Data API refused the call: BadRequestException (HTTP 400): Database kuroko does not exist');
    expect(explained?.fix).toContain('--database-url');
    const resuming = new DatabaseResumingException({ message: 'The Aurora DB instance is resuming after being auto-paused.', $metadata: { httpStatusCode: 400 } });
    expect(explainStartupFailure(resuming, { command: 'server' })?.what).toBe('the Aurora cluster is resuming from its pause');
  });

  it("MariaDB's 1698 for a user it does not know (the shape mysql2 gave for user 'nobody' on this machine's MariaDB)", () => {
    const error = Object.assign(new Error("Access denied for user 'nobody'@'127.0.0.1'"), { code: 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR', errno: 1698 });
    expect(explainStartupFailure(error, { command: 'server' })?.what).toBe("the database refused user 'nobody' connecting from 127.0.0.1 (wrong password, or no such user)");
  });

  it('knows nothing of a plain bug', () => {
    expect(explainStartupFailure(new TypeError("Cannot read properties of undefined (reading 'id')"), { command: 'dev' })).toBeUndefined();
  });
});

describe('the command guard', () => {
  it('an unexpected error is one line and where to report it; its stack only with --debug', async () => {
    const quiet = collect();
    const bug = new TypeError("Cannot read properties of undefined (reading 'id')");
    expect(await runGuarded({ command: 'server', io: quiet.io, debug: false }, () => Promise.reject(bug))).toBe(1);
    expect(quiet.err()).toBe(`kuroko server: unexpected error: TypeError: Cannot read properties of undefined (reading 'id')\n  ${REPORT_HINT}\n`);
    expect(quiet.err()).not.toMatch(STACK_FRAME);

    const loud = collect();
    reportFailure(bug, { command: 'server', io: loud.io, debug: true });
    expect(loud.err()).toContain(REPORT_HINT);
    expect(loud.err()).toMatch(STACK_FRAME);
  });

  it('takes --debug out of the arguments, but not after --', () => {
    expect(takeDebugFlag(['dev', '--debug', '--port', '1'])).toEqual({ args: ['dev', '--port', '1'], debug: true });
    expect(takeDebugFlag(['validate', '--', '--debug'])).toEqual({ args: ['validate', '--', '--debug'], debug: false });
  });

  it('main runs every command of its table through the guard', async () => {
    const out = collect();
    // A command that fails at start: migrate against a port where nothing listens (port 1 is never served here).
    const status = await main(['migrate', '--database-url', 'mysql://root@127.0.0.1:1/kuroko'], out.io, {});
    expect(status).toBe(1);
    expect(out.err()).toMatch(/^kuroko migrate: cannot reach the database at 127\.0\.0\.1:1: connection refused\n {2}fix: /);
  });
});

describe('the Node.js check of bin/kuroko.js', () => {
  it('refuses versions before the supported one and accepts it and later ones', () => {
    expect(nodeVersionProblem('v18.20.4')).toMatch(/^kuroko: Node\.js v18\.20\.4 is too old: kuroko needs Node\.js 20 or later\.\n {2}fix: .+\n$/);
    expect(nodeVersionProblem('v16.0.0')).toContain('too old');
    expect(nodeVersionProblem('v20.0.0')).toBeUndefined();
    expect(nodeVersionProblem('v24.1.0')).toBeUndefined();
    expect(nodeVersionProblem(process.version)).toBeUndefined();
  });

  it('names the version package.json requires', () => {
    const engines = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(`>=${MINIMUM_NODE_MAJOR}`);
  });
});
