/**
 * The deploy-time migrator's work (handler.ts beside it is the entry point; it lives here, not in app/, because it
 * creates API clients through http/api/http-auth.ts), the onEvent function of a CDK Provider: Create and Update bring the schema up to date
 * (migrations are idempotent, so every deploy may run them), Delete leaves the database alone (it outlives the
 * stateless stack). Failures are thrown; the Provider framework reports them to CloudFormation.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { readSecretString } from '../../adapters/aws/secrets';
import { ConfigError } from '../../core/errors';
import { DATABASE_ROLE, ensureDatabaseUser, type DatabaseRole } from '../../db/database-users';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { ensureApiClients } from '../../http/api/http-auth';
import type { MigratorConfig } from '../../app/config/config';
import { CUSTOM_RESOURCE_REQUEST, type CustomResourceEvent, type CustomResourceResponse } from '../../app/lambda/lambda-events';
import type { LambdaRuntime } from '../../app/lambda/lambda-runtime';

const adminClientSecret = z.object({ name: z.string().min(1), secret: z.string().min(1) });
const databaseUserSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** One custom-resource request's work. */
export function migratorFunction(runtime: LambdaRuntime<MigratorConfig>) {
  const { config, logger } = runtime;

  /**
   * Creates the deployment's first admin API client from its generated secret, so the API can be used right after
   * `cdk deploy`. A client of that name whose secret and scope already match is left alone.
   */
  async function ensureAdminClient(secretArn: string): Promise<string> {
    const parsed = adminClientSecret.safeParse(JSON.parse(await readSecretString(new SecretsManagerClient({}), secretArn)));
    if (!parsed.success) throw new ConfigError([`secret ${secretArn} must hold {"name","secret"}: ${parsed.error.message}`]);
    await ensureApiClients(runtime.services.stores.apiClients, [{ ...parsed.data, scope: 'admin' }]);
    return parsed.data.name;
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
    const adminClient = config.apiClientsSecretArn ? await ensureAdminClient(config.apiClientsSecretArn) : undefined;
    logger.info(`${request.RequestType}: schema at ${latest}`, { applied: run.applied, adminClient, databaseUsers });
    return { PhysicalResourceId: physicalResourceId, Data: { Applied: run.applied.length, Latest: latest } };
  };
}
