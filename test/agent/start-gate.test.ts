/**
 * A command runs only once its pid is in the database. Before, a command whose pid never reached the database (the
 * agent died, or the start write failed) ran anyway, invisible to the monitor's absence check and to the leftover
 * killer, and could run beside its retry. Now the shell waits at a gate (fd 3) that the agent opens after the
 * start write: an agent that dies first takes the gate with it, and a start that cannot be written ends the
 * command unrun. Real processes, real MariaDB.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kysely, MysqlDialect, type Dialect, type MysqlPool } from 'kysely';
import mysql2 from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessGroupAlive } from '../../agent/proc';
import { GATE_CLOSED_STATUS, startCommand } from '../../agent/process-runner';
import { mysqlPoolOptions, type DatabaseHandle } from '../../db/connection';
import type { Database } from '../../db/schema';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, executionRow, killStrayGroups, queueExecutions, testAgent } from './agent-fixtures';

let scratch: string;
const strayGroups: number[] = [];
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-gate-'));
});
afterAll(() => {
  killStrayGroups(strayGroups);
  rmSync(scratch, { recursive: true, force: true });
});

describe('the process runner gate', () => {
  it('runs the script only after open(), with $LINENO and the pid unchanged', async () => {
    const marker = join(scratch, 'opened');
    const command = startCommand({ shell: `echo "$LINENO $$" > '${marker}'`, env: {}, inheritEnv: AGENT_ENV, gated: true });
    strayGroups.push(command.pid!);
    // Held at the gate: alive, and nothing of the script has run (a pause only gives a broken gate time to show).
    await new Promise((r) => setTimeout(r, 300));
    expect(isProcessGroupAlive(command.pid!)).toBe(true);
    expect(existsSync(marker)).toBe(false);
    command.open();
    const result = await command.done;
    expect(result.exitStatus).toBe(0);
    expect(readFileSync(marker, 'utf8').trim()).toBe(`1 ${command.pid}`);
  });

  it('ends the command unrun on shut()', async () => {
    const marker = join(scratch, 'shut');
    const command = startCommand({ shell: `touch '${marker}'`, env: {}, inheritEnv: AGENT_ENV, gated: true });
    command.shut();
    expect((await command.done).exitStatus).toBe(GATE_CLOSED_STATUS);
    expect(existsSync(marker)).toBe(false);
  });

  it('ends the command unrun when the process that started it dies before opening the gate', { timeout: 60_000 }, async () => {
    const marker = join(scratch, 'orphan');
    const pidFile = join(scratch, 'orphan.pid');
    const script = join(scratch, 'opener.ts');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';\n` +
        `import { startCommand } from ${JSON.stringify(resolve('agent/process-runner.ts'))};\n` +
        `const c = startCommand({ shell: ${JSON.stringify(`touch '${marker}'; sleep 300`)}, env: {}, inheritEnv: { PATH: process.env.PATH }, gated: true });\n` +
        `writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));\n` +
        `setInterval(() => {}, 1000);\n`,
    );
    const opener = spawn(process.execPath, ['--import', 'tsx', script], { stdio: 'ignore' });
    const pid = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined), {
      timeoutMs: 30_000,
      description: 'the opener to start its command',
    });
    strayGroups.push(pid);
    opener.kill('SIGKILL');
    await waitFor(() => !isProcessGroupAlive(pid), { timeoutMs: 15_000, description: 'the orphaned command to end' });
    expect(existsSync(marker)).toBe(false);
  });

  it('leaves the gate-closed status in the status file when the gate is shut', async () => {
    const statusFile = join(scratch, 'shut.status');
    const command = startCommand({ shell: 'true', env: {}, inheritEnv: AGENT_ENV, gated: true, statusFile });
    command.shut();
    expect((await command.done).exitStatus).toBe(GATE_CLOSED_STATUS);
    expect(readFileSync(statusFile, 'utf8')).toBe(`${GATE_CLOSED_STATUS}\n`);
  });
});

/** MySQL with a driver whose pid writes (the agent's start) fail, as during an outage, while all else works. */
function failingStartDialect(uri: string, failures: { count: number }): Dialect {
  const pool = mysql2.createPool(mysqlPoolOptions(uri));
  pool.on('connection', (connection) => connection.query("SET time_zone = '+00:00'"));
  const inner = new MysqlDialect({ pool: pool as unknown as MysqlPool });
  return {
    createAdapter: () => inner.createAdapter(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createDriver: () => {
      const driver = inner.createDriver();
      const acquire = driver.acquireConnection.bind(driver);
      driver.acquireConnection = async () => {
        const connection = await acquire();
        const execute = connection.executeQuery.bind(connection);
        connection.executeQuery = (query) => {
          if (/^update `executions` set `pid` =/.test(query.sql)) {
            failures.count++;
            return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' }));
          }
          return execute(query);
        };
        return connection;
      };
      return driver;
    },
  };
}

describe('the agent', () => {
  let tdb: TestDatabase;
  let handle: DatabaseHandle;
  const failures = { count: 0 };
  beforeAll(async () => {
    tdb = await createTestDatabase('mysql');
    const db = new Kysely<Database>({ dialect: failingStartDialect(tdb.url, failures) });
    handle = { db, dialect: 'mysql', capabilities: tdb.capabilities, close: () => db.destroy() };
  });
  afterAll(async () => {
    await handle?.close();
    await tdb?.close();
  });

  it('does not run a command whose pid could not be recorded, and says so in its output', { timeout: 60_000 }, async () => {
    const marker = join(scratch, 'unrecorded');
    const agent = testAgent(handle, { leaseMs: 1_500 });
    try {
      await agent.agent.start();
      await queueExecutions(tdb.db, [{ id: 9_001, shell: `touch '${marker}'` }]);
      const row = await waitFor(async () => {
        const e = await executionRow(tdb.db, 9_001);
        return e.finishedAt !== null ? e : undefined;
      }, { timeoutMs: 30_000, description: 'the execution to finish' });
      expect(failures.count).toBeGreaterThan(1);
      expect(row.exitStatus).toBe(GATE_CLOSED_STATUS);
      expect(row.outputHead).toMatch(/the pid could not be recorded .*; the command was not run/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await agent.dispose();
    }
  });
});
