/**
 * The deploy-time migrator, the onEvent function of a CDK Provider: Create and Update bring the schema up to
 * date (migrations are idempotent, so every deploy may run them), Delete leaves the database alone (it outlives
 * the stateless stack). Failures are thrown; the Provider framework reports them to CloudFormation.
 */
import { migrateToLatest, migrationNames } from '../../db/migrator';
import { parseMigratorConfig } from '../shared/config';
import { CUSTOM_RESOURCE_REQUEST, parseCustomResourceEvent, type CustomResourceResponse } from '../shared/lambda-events';
import { createLambdaRuntime, lambdaHandler } from '../shared/lambda-runtime';

export const runtime = createLambdaRuntime(parseMigratorConfig(process.env));
const { config, logger } = runtime;

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
  logger.info(`${request.RequestType}: schema at ${latest}`, { applied: run.applied });
  return { PhysicalResourceId: physicalResourceId, Data: { Applied: run.applied.length, Latest: latest } };
});
