/**
 * The deploy-time migrator, the onEvent function of a CDK Provider: Create and Update bring the schema up to
 * date (migrations are idempotent, so every deploy may run them), Delete leaves the database alone (it outlives
 * the stateless stack). Failures are thrown; the Provider framework reports them to CloudFormation.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { readSecretString } from '../../adapters/aws/secrets';
import { ConfigError } from '../../core/errors';
import { DATABASE_ROLE, ensureDatabaseUser, type DatabaseRole } from '../../db/database-users';
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { ensureApiClients } from '../../http/api/http-auth';
import { parseMigratorConfig } from '../../app/config/config';
import { CUSTOM_RESOURCE_REQUEST, parseCustomResourceEvent, type CustomResourceResponse } from '../../app/lambda/lambda-events';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';

export const runtime = createLambdaRuntime(parseMigratorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.migrator });
const { config, logger } = runtime;

const adminClientSecret = z.object({ name: z.string().min(1), secret: z.string().min(1) });

/**
 * Creates the deployment's first admin API client from its generated secret, so the API can be used right after
 * `cdk deploy`. A client of that name whose secret and scope already match is left alone.
 */
async function ensureAdminClient(secretArn: string): Promise<string> {
  const parsed = adminClientSecret.safeParse(JSON.parse(await readSecretString(new SecretsManagerClient({}), secretArn)));
  if (!parsed.success) throw new ConfigError([`secret ${secretArn} must hold {"name","secret"}: ${parsed.error.message}`]);
  const services = runtime.services;
  await ensureApiClients(new ApiClientRepository(runtime.handle.db, services.ids, services.clock), [{ ...parsed.data, scope: 'admin' }]);
  return parsed.data.name;
}

const databaseUserSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });

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

export const handler = lambdaHandler(runtime, async (event: unknown): Promise<CustomResourceResponse> => {
  const request = parseCustomResourceEvent(event);
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
});
