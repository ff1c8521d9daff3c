/**
 * Issue 13 on AWS: the deploy-time migrator (the only holder of the master secret) creates the agent and runtime
 * MySQL users from their generated secrets, through the Data API, on every deploy. The users it makes are then
 * checked with real connections: the agent user cannot insert an API client, the runtime user cannot drop a table.
 */
import { randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as MigratorModule from '../../functions/migrator/handler';
import { createTestDatabase, testMysqlUrl, type TestDatabase } from '../helpers/test-database';
import { applyEnv, customResourceEvent, functionEnv, lambdaContext } from '../functions/function-fixtures';

const AGENT_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-db-agent-AbCdEf';
const RUNTIME_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-db-runtime-AbCdEf';
const TABLE_ACCESS_DENIED = 1142;
const suffix = randomBytes(4).toString('hex');
const agent = { username: `kt_lagent_${suffix}`, password: randomBytes(18).toString('base64url') };
const runtimeUser = { username: `kt_lrt_${suffix}`, password: randomBytes(18).toString('base64url') };
// Secrets Manager has no local stand-in here: mocked at the client boundary, as the admin-client test does.
const secrets = mockClient(SecretsManagerClient);
let tdb: TestDatabase;
let migrator: typeof MigratorModule;
const context = () => lambdaContext('kuroko-test-migrator', () => 300_000);

const rootQuery = async (statement: string): Promise<void> => {
  const connection = await createConnection({ uri: testMysqlUrl() });
  try {
    await connection.query(statement);
  } finally {
    await connection.end();
  }
};
const errnoAs = async (user: { username: string; password: string }, statement: string): Promise<number | undefined> => {
  const url = new URL(testMysqlUrl());
  url.username = user.username;
  url.password = user.password;
  url.pathname = `/${databaseName()}`;
  const connection = await createConnection({ uri: url.toString() });
  try {
    await connection.query(statement);
    return undefined;
  } catch (error) {
    return (error as { errno?: number }).errno;
  } finally {
    await connection.end();
  }
};
const databaseName = (): string => process.env[ENV_KEYS.dbName] ?? '';

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { migrate: false });
  applyEnv(functionEnv(tdb, { [ENV_KEYS.dbAgentSecretArn]: AGENT_SECRET_ARN, [ENV_KEYS.dbRuntimeSecretArn]: RUNTIME_SECRET_ARN }));
  secrets.on(GetSecretValueCommand, { SecretId: AGENT_SECRET_ARN }).resolves({ SecretString: JSON.stringify(agent) });
  secrets.on(GetSecretValueCommand, { SecretId: RUNTIME_SECRET_ARN }).resolves({ SecretString: JSON.stringify(runtimeUser) });
  migrator = await import('../../functions/migrator/handler');
});
afterAll(async () => {
  delete process.env[ENV_KEYS.dbAgentSecretArn];
  delete process.env[ENV_KEYS.dbRuntimeSecretArn];
  secrets.restore();
  await migrator?.runtime.close();
  for (const user of [agent, runtimeUser]) await rootQuery(`DROP USER IF EXISTS '${user.username}'@'%'`);
  await tdb?.close();
});

describe('migrator handler: the agent and runtime database users', () => {
  it('creates both users from their secrets; the agent cannot insert an API client, the runtime user cannot drop a table', async () => {
    await migrator.handler(customResourceEvent('Create'), context());
    expect(await errnoAs(agent, "INSERT INTO api_clients (id, name, secret_hash, scope, created_at) VALUES (1, 'evil', 'x', 'admin', NOW())")).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoAs(agent, 'SELECT id FROM executions LIMIT 1')).toBeUndefined();
    expect(await errnoAs(runtimeUser, 'DROP TABLE executions')).toBe(TABLE_ACCESS_DENIED);
    expect(await errnoAs(runtimeUser, 'SELECT COUNT(*) FROM api_clients')).toBeUndefined();
  });

  it('re-applies a rotated password on the next deploy, and fails the deploy on a malformed secret', async () => {
    const rotated = { ...agent, password: randomBytes(18).toString('base64url') };
    secrets.on(GetSecretValueCommand, { SecretId: AGENT_SECRET_ARN }).resolves({ SecretString: JSON.stringify(rotated) });
    await migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context());
    expect(await errnoAs(rotated, 'SELECT id FROM workers LIMIT 1')).toBeUndefined();

    secrets.on(GetSecretValueCommand, { SecretId: AGENT_SECRET_ARN }).resolves({ SecretString: JSON.stringify({ username: agent.username }) });
    await expect(migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context())).rejects.toThrow(/must hold \{"username","password"\}/);
  });
});
