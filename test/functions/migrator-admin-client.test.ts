/** The migrator creates the deployment's first admin API client from its generated Secrets Manager secret. */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySecret } from '../../http/api/http-auth';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as MigratorModule from '../../functions/migrator/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, customResourceEvent, functionEnv, lambdaContext } from './function-fixtures';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-admin-AbCdEf';
const secrets = mockClient(SecretsManagerClient);
let tdb: TestDatabase;
let migrator: typeof MigratorModule;
const context = () => lambdaContext('kuroko-test-migrator', () => 300_000);

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { migrate: false });
  applyEnv(functionEnv(tdb, { [ENV_KEYS.apiClientsSecretArn]: SECRET_ARN }));
  migrator = await import('../../functions/migrator/handler');
});
afterAll(async () => {
  delete process.env[ENV_KEYS.apiClientsSecretArn];
  secrets.restore();
  await migrator?.runtime.close();
  await tdb?.close();
});

describe('migrator handler: the first admin API client', () => {
  it('creates the client named in the secret with admin scope, and leaves it alone on the next deploy', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ SecretString: JSON.stringify({ name: 'admin', secret: 'first-deploy-secret' }) });
    await migrator.handler(customResourceEvent('Create'), context());
    const row = await tdb.db.selectFrom('api_clients').select(['name', 'scope', 'secret_hash']).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'admin', scope: 'admin' });
    expect(await verifySecret('first-deploy-secret', row.secret_hash)).toBe(true);
    expect(row.secret_hash).not.toContain('first-deploy-secret');

    await migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context());
    const again = await tdb.db.selectFrom('api_clients').select(['secret_hash']).execute();
    expect(again).toEqual([{ secret_hash: row.secret_hash }]);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('fails the deploy with a clear error when the secret does not hold a name and a secret', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ SecretString: JSON.stringify({ name: 'admin' }) });
    await expect(migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context())).rejects.toThrow(/must hold \{"name","secret"\}/);
  });
});
