/**
 * The deploy-time migrator's work (handler.ts beside it is the entry point; it lives here, not in app/, because it
 * creates API clients through http/api/http-auth.ts), the onEvent function of a CDK Provider: Create and Update bring the schema up to date
 * (migrations are idempotent, so every deploy may run them), Delete leaves the database alone (it outlives the
 * stateless stack). Failures are thrown; the Provider framework reports them to CloudFormation.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { readSecretString } from '../../adapters/aws/secrets';
import { ensureSecureParameter, generateKey } from '../../adapters/aws/secure-parameters';
import { readParameter } from '../../adapters/aws/ssm-parameters';
import { ConfigError } from '../../core/errors';
import { DATABASE_ROLE, ensureDatabaseUser, type DatabaseRole } from '../../db/database-users';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { ensureApiClients } from '../../http/api/http-auth';
import type { MigratorConfig } from '../../app/config/config';
import { CUSTOM_RESOURCE_REQUEST, type CustomResourceEvent, type CustomResourceResponse } from '../../app/lambda/lambda-events';
import type { LambdaRuntime } from '../../app/lambda/lambda-runtime';

const adminClientSecret = z.object({ name: z.string().min(1), secret: z.string().min(1) });
/** 20 random bytes (40 hex characters) for the admin client, 32 (64) for the webhook key: as the secrets were. */
const ADMIN_SECRET_BYTES = 20;
const WEBHOOK_KEY_BYTES = 32;
export const ADMIN_CLIENT_NAME = 'admin';
const databaseUserSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** One custom-resource request's work. */
export function migratorFunction(runtime: LambdaRuntime<MigratorConfig>) {
  const { config, logger } = runtime;

  /**
   * Creates the deployment's first admin API client from its SecureString parameter (generated on the first deploy),
   * so the API can be used right after `cdk deploy`. A client of that name whose secret and scope already match is
   * left alone.
   */
  async function ensureAdminClient(ssm: SSMClient, name: string): Promise<string> {
    await ensureSecureParameter(
      ssm,
      name,
      () => JSON.stringify({ name: ADMIN_CLIENT_NAME, secret: generateKey(ADMIN_SECRET_BYTES) }),
      'Kuroko: the first admin API client, created by the migrator if absent',
    );
    let value: unknown;
    try {
      value = JSON.parse(await readParameter(ssm, name));
    } catch {
      value = undefined;
    }
    const parsed = adminClientSecret.safeParse(value);
    // The message names the parameter, never its value.
    if (!parsed.success) throw new ConfigError([`parameter ${name} must hold {"name","secret"}: ${parsed.error.issues.map((i) => i.path.join('.') || 'value').join(', ')}`]);
    await ensureApiClients(runtime.services.stores.apiClients, [{ ...parsed.data, scope: 'admin' }]);
    return parsed.data.name;
  }

  /** Generates the webhook key on the first deploy; the notifier reads it (the migrator only creates it). */
  async function ensureWebhookKey(ssm: SSMClient, name: string): Promise<string> {
    return ensureSecureParameter(ssm, name, () => generateKey(WEBHOOK_KEY_BYTES), 'Kuroko: signs definition webhooks (X-Kuroko2-Signature)');
  }

  /**
   * Creates or repairs the agent and runtime MySQL users from their generated secrets (issue 13): the workers and the
   * other functions reach the database through those, and only this function holds the master secret. Every deploy
   * re-applies the passwords and grants, so a rotated secret or a widened grant is put right.
   */
  async function ensureDatabaseUsers(): Promise<string[]> {
    const secrets = new SecretsManagerClient({});
    const done: string[] = [];
    for (const role of [DATABASE_ROLE.agent, DATABASE_ROLE.runtime] satisfies DatabaseRole[]) {
      const secretArn = config.databaseUserSecretArns[role];
      if (secretArn === undefined) continue;
      const parsed = databaseUserSecret.safeParse(JSON.parse(await readSecretString(secrets, secretArn)));
      if (!parsed.success) throw new ConfigError([`secret ${secretArn} must hold {"username","password"}: ${parsed.error.message}`]);
      const result = await ensureDatabaseUser(runtime.handle.db, config.database.databaseName, { role, ...parsed.data });
      logger.info(`database user ${parsed.data.username} (${role}) ready`, { ...result });
      done.push(parsed.data.username);
    }
    return done;
  }

  return async (request: CustomResourceEvent): Promise<CustomResourceResponse> => {
    // Stable across updates: a new id would make CloudFormation delete the "old" resource.
    const physicalResourceId = request.PhysicalResourceId ?? `kuroko-migrations-${config.database.databaseName}`;
    if (request.RequestType === CUSTOM_RESOURCE_REQUEST.delete) {
      logger.info('delete: the database is kept');
      return { PhysicalResourceId: physicalResourceId };
    }
    const run = await migrateToLatest(runtime.handle.db);
    const latest = migrationNames().at(-1) ?? '';
    const databaseUsers = await ensureDatabaseUsers();
    const ssm = new SSMClient({});
    const adminClient = config.apiClientsParameter ? await ensureAdminClient(ssm, config.apiClientsParameter) : undefined;
    const webhookKey = config.webhookSecretParameter ? await ensureWebhookKey(ssm, config.webhookSecretParameter) : undefined;
    logger.info(`${request.RequestType}: schema at ${latest}`, { applied: run.applied, adminClient, webhookKey, databaseUsers });
    return { PhysicalResourceId: physicalResourceId, Data: { Applied: run.applied.length, Latest: latest } };
  };
}
