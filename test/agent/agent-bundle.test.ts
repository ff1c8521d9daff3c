/**
 * The self-hosted agent as it ships (`npm run build:agent`): the esbuild bundle, built here into a scratch folder,
 * runs commands on each database, loading the driver it needs from its own chunks (mysql2 and the AWS SDK are split
 * out and loaded on first use), and says what to install when the SQLite driver is missing on the host.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { buildSelfHostedAgent, ec2AgentBuildOptions } from '../../scripts/agent-bundle';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, executionRow, queueExecutions } from './agent-fixtures';

const PROJECT_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));
const BUILD_TIMEOUT_MS = 60_000;

let buildDir: string;
let bundle: string;

beforeAll(async () => {
  buildDir = mkdtempSync(join(tmpdir(), 'kuroko-agent-bundle-'));
  bundle = await buildSelfHostedAgent(buildDir);
}, BUILD_TIMEOUT_MS);
afterAll(() => rmSync(buildDir, { recursive: true, force: true }));

interface BundleRun {
  exited: Promise<number | null>;
  /** Whether the process has ended. */
  ended: () => boolean;
  stop: () => void;
  stderr: () => string;
}

function runBundle(args: string[], env: Record<string, string>): BundleRun {
  let stderr = '';
  const child = spawn(process.execPath, [bundle, ...args], { env: { ...AGENT_ENV, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'close', not 'exit': stderr is read after the end, and its last chunk can arrive after the exit is reported.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { exited, ended: () => child.exitCode !== null || child.signalCode !== null, stop: () => child.kill('SIGTERM'), stderr: () => stderr };
}

describeEachDialect('the built agent bundle', (dialect) => {
  let tdb: TestDatabase;
  let logs: string;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    logs = mkdtempSync(join(tmpdir(), 'kuroko-agent-bundle-logs-'));
  });
  afterAll(async () => {
    await tdb?.close();
    rmSync(logs, { recursive: true, force: true });
  });

  it('claims and runs a command, records its output and exit status, and drains on SIGTERM', async () => {
    await queueExecutions(tdb.db, [{ id: 30_001, shell: "printf 'bundled \\u00e9\\u732b\\n'; exit 3" }]);
    // Built outside the project, the bundle finds the native SQLite module through NODE_PATH, as on a host where
    // better-sqlite3 is installed globally.
    const run = runBundle(['--database-url', tdb.url, '--log-dir', logs, '--heartbeat-interval', '1'], { NODE_PATH: PROJECT_MODULES });
    try {
      const done = await waitFor(
        async () => {
          const row = await executionRow(tdb.db, 30_001);
          if (row.finishedAt === null && run.ended()) throw new Error(`the agent exited early: ${run.stderr()}`);
          return row.finishedAt !== null ? row : undefined;
        },
        { timeoutMs: 30_000, description: 'the bundle to run the command' },
      );
      expect([done.exitStatus, done.outputHead]).toEqual([3, 'bundled é猫\n']);
    } finally {
      run.stop();
    }
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toContain('stopped');
  });
});

describe('the built agent bundle without better-sqlite3', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('refuses to start on a SQLite database and says what to install', async () => {
    const run = runBundle(['--database-url', tdb.url, '--log-dir', join(buildDir, 'logs')], {});
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toContain('kuroko agent: the native SQLite module (better-sqlite3) is not installed');
    expect(run.stderr()).toContain('npm install better-sqlite3@12');
  });
});

describe('the EC2 agent bundle', () => {
  // Code in the bundle costs the agent memory for its whole life even when it never runs (V8 keeps and parses the
  // whole file): each of these once crept in through an import and cost it 3 to 9 MB.
  it('carries neither mysql2, the EC2 client, all of zod, nor the Lambda runtime', async () => {
    const { metafile } = await build({ ...ec2AgentBuildOptions(fileURLToPath(new URL('../../agent/main.ts', import.meta.url)), join(buildDir, 'ec2', 'agent.mjs')), metafile: true });
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.filter((path) => /node_modules\/(mysql2|@aws-sdk\/client-ec2|zod\/v4\/classic)\/|functions\/shared\/lambda-runtime/.test(path))).toEqual([]);
    // zod/mini, which the agent's configuration is read with, is still there.
    expect(inputs.some((path) => path.includes('node_modules/zod/'))).toBe(true);
  }, BUILD_TIMEOUT_MS);
});
