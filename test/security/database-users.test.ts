/**
 * Issue 13, "Every job command is the database master": agents reach the database as their own MySQL user granted
 * only what the claim loop needs, the engine as a runtime user without DDL, and only the migrator uses the master.
 *
 * Against the real MariaDB, with real connections as the users db/database-users.ts creates: the agent user runs a
 * real agent through claim, output, memory sample, kill and stop, yet cannot touch api_clients or run DDL; the
 * runtime user can serve the API but cannot drop a table; running the setup again repairs what was widened.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrate } from '../../cli/migrate-command';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import {
  DATABASE_ROLE,
  createUserStatements,
  ensureDatabaseUser,
  parseShowGrants,
  type DatabaseUser,
} from '../../db/database-users';
import { executionRow, killStrayGroups, queueExecutions, testAgent } from '../agent/agent-fixtures';
import { startDataApiServer } from '../helpers/data-api-server';
import { createTestDatabase, testMysqlUrl, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

/** ER_TABLEACCESS_DENIED_ERROR: "<command> command denied to user ... for table ...". */
const TABLE_ACCESS_DENIED = 1142;
/** ER_ACCESS_DENIED_ERROR: a wrong password. */
const ACCESS_DENIED = 1045;
const WAIT = { timeoutMs: 30_000 };

const suffix = randomBytes(4).toString('hex');
const password = () => randomBytes(18).toString('base64url');

describe('database users: agent and runtime users granted only what they need (MariaDB)', () => {
  let tdb: TestDatabase;
  let databaseName: string;
  type UserWithPassword = DatabaseUser & { password: string };
  const agentUser: UserWithPassword = { role: DATABASE_ROLE.agent, username: `kt_agent_${suffix}`, password: password() };
  const runtimeUser: UserWithPassword = { role: DATABASE_ROLE.runtime, username: `kt_runtime_${suffix}`, password: password() };
  const connections: Connection[] = [];
  const handles: DatabaseHandle[] = [];
  const strayGroups: number[] = [];

  const urlAs = (user: UserWithPassword): string => {
    const url = new URL(testMysqlUrl());
    url.username = user.username;
    url.password = user.password;
    url.pathname = `/${databaseName}`;
    return url.toString();
  };
  const connectAs = async (user: UserWithPassword): Promise<Connection> => {
    const connection = await createConnection({ uri: urlAs(user) });
    connections.push(connection);
    return connection;
  };
  const errnoOf = async (run: () => Promise<unknown>): Promise<number | undefined> => {
    try {
      await run();
      return undefined;
    } catch (error) {
      return (error as { errno?: number }).errno;
    }
  };
  const rootQuery = async (statement: string): Promise<void> => {
    const url = new URL(testMysqlUrl());
    url.pathname = '/';
    const connection = await createConnection({ uri: url.toString() });
    try {
      await connection.query(statement);
    } finally {
      await connection.end();
    }
  };

  beforeAll(async () => {
    tdb = await createTestDatabase('mysql');
    databaseName = decodeURIComponent(new URL(tdb.url).pathname.slice(1));
    expect(await ensureDatabaseUser(tdb.db, databaseName, agentUser)).toMatchObject({ created: true, revoked: 0 });
    expect(await ensureDatabaseUser(tdb.db, databaseName, runtimeUser)).toMatchObject({ created: true, revoked: 0 });
  });
  afterAll(async () => {
    killStrayGroups(strayGroups);
    for (const connection of connections) await connection.end().catch(() => {});
    for (const handle of handles) await handle.close().catch(() => {});
    for (const user of [agentUser, runtimeUser, ...['kt_viaapi', 'kt_cli_a', 'kt_cli_r'].map((p) => ({ username: `${p}_${suffix}` }))]) await rootQuery(`DROP USER IF EXISTS '${user.username}'@'%'`);
    await tdb?.close();
  });

  it('the agent user cannot read or write API clients, definitions or console users, nor change any table', async () => {
    const agent = await connectAs(agentUser);
    const now = new Date();
    expect(await errnoOf(() => agent.query("INSERT INTO api_clients (id, name, secret_hash, scope, created_at) VALUES (999999, 'evil', 'x', 'admin', ?)", [now]))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('SELECT * FROM api_clients'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('UPDATE job_definitions SET script = ?', ['execute: id']))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('SELECT * FROM tokens'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('DELETE FROM executions'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('DROP TABLE executions'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('CREATE TABLE evil (id INT)'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('ALTER TABLE executions ADD COLUMN evil INT'))).toBe(TABLE_ACCESS_DENIED);
    // It may read which migrations were applied (a start-up check refuses a schema newer than the build), not change them.
    await agent.query('SELECT name FROM kysely_migration');
    expect(await errnoOf(() => agent.query('DELETE FROM kysely_migration'))).toBe(TABLE_ACCESS_DENIED);
  });

  it('yet a real agent connected as that user claims, runs, samples, is killed and stops', async () => {
    const handle = createDatabase(urlAs(agentUser));
    handles.push(handle);
    const { agent, dispose } = testAgent(handle, { queues: ['grants'], memorySchedule: () => 50 });
    try {
      await queueExecutions(tdb.db, [
        { id: 41_001, shell: 'echo as-agent-user; sleep 0.5', queue: 'grants' },
        { id: 41_002, shell: 'sleep 300', queue: 'grants' },
      ]);
      await agent.start();
      const done = await waitFor(async () => {
        const row = await executionRow(tdb.db, 41_001);
        return row.finishedAt !== null ? row : undefined;
      }, { ...WAIT, description: 'execution 41001 to finish' });
      expect([done.exitStatus, done.outputHead]).toEqual([0, 'as-agent-user\n']);
      await waitFor(() => tdb.db.selectFrom('memory_samples').selectAll().where('execution_id', '=', 41_001).executeTakeFirst(), {
        ...WAIT,
        description: 'a memory sample written by the agent user',
      });
      const running = await waitFor(async () => {
        const row = await executionRow(tdb.db, 41_002);
        return row.pid !== null ? row : undefined;
      }, WAIT);
      strayGroups.push(running.pid!);
      await tdb.db
        .insertInto('process_signals')
        .values({ id: 41_900, execution_id: 41_002, attempt: running.attempt, signal: 'SIGTERM', reason: 'test', requested_at: new Date(), delivered_at: null, result: null })
        .execute();
      const killed = await waitFor(async () => {
        const row = await executionRow(tdb.db, 41_002);
        return row.finishedAt !== null ? row : undefined;
      }, { ...WAIT, description: 'the kill to end execution 41002' });
      expect(killed.termSignal).toBe('SIGTERM');
      const workerId = running.workerId!;
      await agent.stop('test over');
      expect(await tdb.db.selectFrom('workers').selectAll().where('id', '=', workerId).executeTakeFirst()).toBeUndefined();
    } finally {
      await dispose();
    }
  });

  it('the runtime user works on rows of every table (the API reads api_clients) but cannot drop, create or alter tables', async () => {
    const runtime = await connectAs(runtimeUser);
    await runtime.query('SELECT COUNT(*) FROM api_clients');
    await runtime.query('UPDATE job_definitions SET updated_at = updated_at WHERE id = 0');
    expect(await errnoOf(() => runtime.query('DROP TABLE executions'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => runtime.query('CREATE TABLE evil (id INT)'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => runtime.query('ALTER TABLE api_clients ADD COLUMN evil INT'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => runtime.query('TRUNCATE TABLE events'))).toBe(TABLE_ACCESS_DENIED);
  });

  it('grants the runtime user this one database only: `_` in its name is not a wildcard', async () => {
    // kuroko_test_<hex> as a pattern would also match kurokoXtest_<hex>: a sibling database of that shape stays closed.
    const sibling = databaseName.replace(/^kuroko_/, 'kurokoX');
    await rootQuery(`CREATE DATABASE \`${sibling}\``);
    try {
      await rootQuery(`CREATE TABLE \`${sibling}\`.secrets (v TEXT)`);
      const runtime = await connectAs(runtimeUser);
      expect(await errnoOf(() => runtime.query(`SELECT * FROM \`${sibling}\`.secrets`))).toBe(TABLE_ACCESS_DENIED);
    } finally {
      await rootQuery(`DROP DATABASE IF EXISTS \`${sibling}\``);
    }
  });

  it('running it again changes nothing, revokes what was added by hand, and takes a new password', async () => {
    expect(await ensureDatabaseUser(tdb.db, databaseName, agentUser)).toEqual({ created: false, granted: 0, revoked: 0 });
    expect(await ensureDatabaseUser(tdb.db, databaseName, runtimeUser)).toEqual({ created: false, granted: 0, revoked: 0 });

    await rootQuery(`GRANT INSERT, SELECT ON \`${databaseName}\`.api_clients TO '${agentUser.username}'@'%'`);
    await rootQuery(`GRANT DELETE ON \`${databaseName}\`.executions TO '${agentUser.username}'@'%'`);
    await rootQuery(`GRANT DROP ON \`${databaseName.replace(/_/g, '\\_')}\`.* TO '${runtimeUser.username}'@'%'`);
    expect(await ensureDatabaseUser(tdb.db, databaseName, agentUser)).toEqual({ created: false, granted: 0, revoked: 2 });
    expect(await ensureDatabaseUser(tdb.db, databaseName, runtimeUser)).toEqual({ created: false, granted: 0, revoked: 1 });
    const agent = await connectAs(agentUser);
    expect(await errnoOf(() => agent.query('SELECT * FROM api_clients'))).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoOf(() => agent.query('DELETE FROM executions WHERE id = 0'))).toBe(TABLE_ACCESS_DENIED);
    await agent.query('SELECT id FROM executions LIMIT 1');
    const runtime = await connectAs(runtimeUser);
    expect(await errnoOf(() => runtime.query('DROP TABLE events'))).toBe(TABLE_ACCESS_DENIED);

    const rotated = { ...agentUser, password: password() };
    await ensureDatabaseUser(tdb.db, databaseName, rotated);
    expect(await errnoOf(() => connectAs(agentUser))).toBe(ACCESS_DENIED);
    await (await connectAs(rotated)).query('SELECT id FROM workers LIMIT 1');
    agentUser.password = rotated.password;
  });

  it('works over the Data API too (how the migrator runs on AWS)', async () => {
    const viaApi = await createTestDatabase('data-api', { migrate: false });
    try {
      // The stand-in runs the statements on the same MariaDB as root, as the Data API runs them as the master.
      const user: UserWithPassword = { role: DATABASE_ROLE.runtime, username: `kt_viaapi_${suffix}`, password: password() };
      expect(await ensureDatabaseUser(viaApi.db, databaseName, user)).toMatchObject({ created: true });
      expect(await ensureDatabaseUser(viaApi.db, databaseName, user)).toEqual({ created: false, granted: 0, revoked: 0 });
      const connection = await connectAs(user);
      expect(await errnoOf(() => connection.query('DROP TABLE executions'))).toBe(TABLE_ACCESS_DENIED);
    } finally {
      await viaApi.close();
    }
  });

  it('`kuroko migrate --create-users` creates both users once, prints their passwords, and keeps them when run again', async () => {
    const names = { agent: `kt_cli_a_${suffix}`, runtime: `kt_cli_r_${suffix}` };
    const migrate = async (): Promise<string> => {
      let out = '';
      let err = '';
      const status = await runMigrate(['--database-url', tdb.url, '--create-users', '--agent-user', names.agent, '--runtime-user', names.runtime], {
        stdout: (text) => (out += text),
        stderr: (text) => (err += text),
      }, {});
      expect([status, err]).toEqual([0, '']);
      return out;
    };
    const first = await migrate();
    const passwordOf = (name: string): string => new RegExp(`user ${name} created \\(\\d+ grant\\(s\\) added, 0 revoked\\); password: (\\S+)`).exec(first)?.[1] ?? '';
    const cliAgent: UserWithPassword = { role: DATABASE_ROLE.agent, username: names.agent, password: passwordOf(names.agent) };
    const cliRuntime: UserWithPassword = { role: DATABASE_ROLE.runtime, username: names.runtime, password: passwordOf(names.runtime) };
    expect(cliAgent.password).toMatch(/^[\w-]{32}$/);
    expect(cliRuntime.password).toMatch(/^[\w-]{32}$/);
    const second = await migrate();
    expect(second).toContain(`agent user ${names.agent} checked (0 grant(s) added, 0 revoked); its password is unchanged`);
    expect(second).not.toContain('password:');
    const agent = await connectAs(cliAgent);
    expect(await errnoOf(() => agent.query('SELECT * FROM api_clients'))).toBe(TABLE_ACCESS_DENIED);
    const runtime = await connectAs(cliRuntime);
    expect(await errnoOf(() => runtime.query('DROP TABLE executions'))).toBe(TABLE_ACCESS_DENIED);

    let err = '';
    const sqlite = await runMigrate(['--database-url', 'sqlite::memory:', '--create-users'], { stdout: () => {}, stderr: (t) => (err += t) }, {});
    expect([sqlite, err]).toEqual([2, 'kuroko migrate: invalid configuration:\n  - --create-users needs MySQL or MariaDB: a SQLite file has no users\n']);
  });

  it('an agent on the Data API signs in with its own secret and gets the agent user\'s rights, no more', async () => {
    const agentSecretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-db-agent-AbCdEf';
    const serverUrl = new URL(testMysqlUrl());
    serverUrl.pathname = `/${databaseName}`;
    const server = await startDataApiServer({ mysqlUrl: serverUrl.toString(), userSecrets: { [agentSecretArn]: agentUser } });
    const urlWith = (secret: string) =>
      `data-api://${server.resourceArn}?secret=${encodeURIComponent(secret)}&database=${databaseName}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
    const handle = createDatabase(urlWith(agentSecretArn));
    handles.push(handle);
    const { agent, dispose } = testAgent(handle, { queues: ['grants-api'] });
    try {
      await queueExecutions(tdb.db, [{ id: 42_001, shell: 'echo over-the-data-api', queue: 'grants-api' }]);
      await agent.start();
      const done = await waitFor(async () => {
        const row = await executionRow(tdb.db, 42_001);
        return row.finishedAt !== null ? row : undefined;
      }, { ...WAIT, description: 'execution 42001 to finish over the Data API' });
      expect([done.exitStatus, done.outputHead]).toEqual([0, 'over-the-data-api\n']);
      await expect(
        handle.db.insertInto('api_clients').values({ id: 999_998, name: 'evil', secret_hash: 'x', scope: 'admin', created_at: new Date() }).execute(),
      ).rejects.toThrow(/1142/);
      // A secret the service does not know is refused before any SQL runs.
      const stranger = createDatabase(urlWith('arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-master-XyZabc'));
      handles.push(stranger);
      await expect(stranger.db.selectFrom('workers').selectAll().execute()).rejects.toThrow(/Invalid secret ARN/);
    } finally {
      await dispose();
      await server.close();
    }
  });

  it('refuses names and passwords it could not quote safely, and prints the SQL a self-hosted DBA can run', () => {
    expect(() => createUserStatements(databaseName, { ...agentUser, username: "x'; DROP USER root; --" })).toThrow(/user name/);
    expect(() => createUserStatements(databaseName, { ...agentUser, password: "short'" })).toThrow(/password/);
    expect(() => createUserStatements('bad`name', agentUser)).toThrow(/database name/);
    const statements = createUserStatements('kuroko', { role: DATABASE_ROLE.agent, username: 'kuroko_agent', password: 'p'.repeat(20) });
    expect(statements).toContain("GRANT SELECT, UPDATE ON `kuroko`.`executions` TO 'kuroko_agent'@'%'");
    expect(statements.join('\n')).not.toMatch(/api_clients|users|sessions|job_definitions|tokens/);
    expect(createUserStatements('kuroko_prod', { role: DATABASE_ROLE.runtime, username: 'kuroko_runtime', password: 'p'.repeat(20) })).toContain(
      "GRANT SELECT, INSERT, UPDATE, DELETE ON `kuroko\\_prod`.* TO 'kuroko_runtime'@'%'",
    );
    expect(parseShowGrants(['GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD \'*AB\'', 'GRANT SELECT, UPDATE ON `k`.`executions` TO `a`@`%`'])).toEqual([
      { object: '`k`.`executions`', privileges: ['SELECT', 'UPDATE'] },
    ]);
  });
});
