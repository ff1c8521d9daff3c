/**
 * The `data-api://` URL that db/connection's createDatabase opens for a database binding.
 *
 * A module of its own so that the EC2 agent can build the URL without importing the Lambda runtime
 * (app/lambda/lambda-runtime), whose imports bring all of zod and more into the agent's bundle: 0.5 MB of
 * code and about 7 MB of the agent's resident memory.
 */
import type { DatabaseConfig } from './config-schemas';

/** The URL for `database`; without `region`, createDatabase takes the region from the cluster ARN. */
export function dataApiUrl(database: DatabaseConfig, region?: string): string {
  const params = new URLSearchParams({ secret: database.secretArn, database: database.databaseName });
  if (database.endpoint !== undefined) params.set('endpoint', database.endpoint);
  if (region !== undefined) params.set('region', region);
  return `data-api://${database.clusterArn}?${params.toString()}`;
}
