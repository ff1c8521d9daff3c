/**
 * The migrator creates the deployment's generated keys as SSM SecureString parameters (issue 17: Secrets Manager
 * bills 0.40 USD a secret a month, a standard parameter nothing) and the first admin API client from its parameter.
 *
 * CloudFormation cannot create a SecureString parameter ("SecureString isn't currently supported for CloudFormation
 * templates", https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ssm/aws.sdk.kotlin.services.ssm.model/-put-parameter-request/type.html),
 * so the migrator puts it with Overwrite=false: generated once, kept on every later deploy. The SSM client is the
 * mocked AWS boundary; the API clients land in the real database.
 */
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { verifySecret } from '../../http/api/http-auth';
import { ENV_KEYS } from '../../app/config/env-keys';
import type * as MigratorModule from '../../functions/migrator/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, customResourceEvent, functionEnv, lambdaContext } from './function-fixtures';

const ADMIN_PARAMETER = '/kuroko/test/admin-api-client';
const WEBHOOK_PARAMETER = '/kuroko/test/webhook-signing-key';
const ssm = mockClient(SSMClient);
let tdb: TestDatabase;
let migrator: typeof MigratorModule;
const context = () => lambdaContext('kuroko-test-migrator', () => 300_000);

/**
 * A Parameter Store stand-in: PutParameter without Overwrite refuses an existing name, and GetParameter answers a
 * SecureString's ciphertext unless WithDecryption is true, as SSM does ("Return decrypted values for secure string
 * parameters. This flag is ignored for String and StringList parameter types":
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html).
 */
let stored: Map<string, { value: string; type: string | undefined }>;
function serveParameters(): void {
  ssm.reset();
  ssm.on(PutParameterCommand).callsFake((input: { Name: string; Value: string; Type?: string; Overwrite?: boolean }) => {
    if (stored.has(input.Name) && input.Overwrite !== true) {
      throw Object.assign(new Error('The parameter already exists.'), { name: 'ParameterAlreadyExists' });
    }
    stored.set(input.Name, { value: input.Value, type: input.Type });
    return { Version: 1, Tier: 'Standard' };
  });
  ssm.on(GetParameterCommand).callsFake((input: { Name: string; WithDecryption?: boolean }) => {
    const found = stored.get(input.Name);
    if (!found) throw Object.assign(new Error('not found'), { name: 'ParameterNotFound' });
    const encrypted = found.type === 'SecureString' && input.WithDecryption !== true;
    const value = encrypted ? Buffer.from(`kms-ciphertext:${found.value}`).toString('base64') : found.value;
    return { Parameter: { Name: input.Name, Value: value, Type: found.type } };
  });
}

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { migrate: false });
  applyEnv(functionEnv(tdb, { [ENV_KEYS.apiClientsParameter]: ADMIN_PARAMETER, [ENV_KEYS.webhookSecretParameter]: WEBHOOK_PARAMETER }));
  migrator = await import('../../functions/migrator/handler');
});
afterAll(async () => {
  delete process.env[ENV_KEYS.apiClientsParameter];
  delete process.env[ENV_KEYS.webhookSecretParameter];
  ssm.restore();
  await migrator?.runtime.close();
  await tdb?.close();
});
beforeEach(async () => {
  stored = new Map();
  serveParameters();
  await tdb.db.deleteFrom('api_clients').execute().catch(() => undefined);
});

describe('migrator handler: the generated keys and the first admin API client', () => {
  it('generates both keys as SecureString parameters on the first deploy and keeps them on the next', async () => {
    const logged = vi.spyOn(process.stdout, 'write');
    await migrator.handler(customResourceEvent('Create'), context());
    const admin = stored.get(ADMIN_PARAMETER);
    const webhook = stored.get(WEBHOOK_PARAMETER);
    expect(admin?.type).toBe('SecureString');
    expect(webhook?.type).toBe('SecureString');
    const { name, secret } = JSON.parse(admin?.value ?? '{}') as { name: string; secret: string };
    expect(name).toBe('admin');
    expect(secret).toMatch(/^[0-9a-f]{40}$/);
    expect(webhook?.value).toMatch(/^[0-9a-f]{64}$/);
    for (const put of ssm.commandCalls(PutParameterCommand)) expect(put.args[0].input).toMatchObject({ Overwrite: false, Tier: 'Standard' });
    // Neither value reaches the log.
    const output = logged.mock.calls.map(([chunk]) => String(chunk)).join('');
    logged.mockRestore();
    expect(output).not.toContain(secret);
    expect(output).not.toContain(webhook?.value);

    const row = await tdb.db.selectFrom('api_clients').select(['name', 'scope', 'secret_hash']).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'admin', scope: 'admin' });
    expect(await verifySecret(secret, row.secret_hash)).toBe(true);

    await migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context());
    expect(stored.get(ADMIN_PARAMETER)?.value).toBe(admin?.value);
    expect(stored.get(WEBHOOK_PARAMETER)?.value).toBe(webhook?.value);
    const again = await tdb.db.selectFrom('api_clients').select(['secret_hash']).execute();
    expect(again).toEqual([{ secret_hash: row.secret_hash }]);
    // It reads only the admin client's parameter: the webhook key is the notifier's to read.
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([
      { Name: ADMIN_PARAMETER, WithDecryption: true },
      { Name: ADMIN_PARAMETER, WithDecryption: true },
    ]);
  });

  it('keeps a value an operator put first (an upgrade carrying the old secrets over)', async () => {
    stored.set(ADMIN_PARAMETER, { value: JSON.stringify({ name: 'admin', secret: 'carried-over-secret' }), type: 'SecureString' });
    stored.set(WEBHOOK_PARAMETER, { value: 'carried-over-key', type: 'SecureString' });
    await migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context());
    expect(stored.get(WEBHOOK_PARAMETER)?.value).toBe('carried-over-key');
    const row = await tdb.db.selectFrom('api_clients').select(['secret_hash']).executeTakeFirstOrThrow();
    expect(await verifySecret('carried-over-secret', row.secret_hash)).toBe(true);
  });

  it('fails the deploy with a clear error, without the value, when the parameter does not hold a name and a secret', async () => {
    stored.set(ADMIN_PARAMETER, { value: JSON.stringify({ name: 'admin', password: 'not-in-the-message' }), type: 'SecureString' });
    const failure = migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), context());
    await expect(failure).rejects.toThrow(/must hold \{"name","secret"\}/);
    await expect(failure).rejects.not.toThrow(/not-in-the-message/);
  });
});
