/**
 * A MariaDB database behind a local Data API server (with AWS's limits), a product handle whose every statement goes
 * through a metered Data API client, and a plain MariaDB handle for setup that is not what is being measured.
 */
import type { Kysely } from 'kysely';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { createIdGenerator } from '../../db/id-generator';
import { migrateToLatest } from '../../db/migrator';
import type { Database } from '../../db/schema';
import { createLimitMeter, type LimitMeter } from './data-api-limits';
import { startDataApiServer } from './data-api-server';
import { createMysqlDatabase, type TestDatabase } from './test-database';

export interface MeteredDatabase {
  meter: LimitMeter;
  /** The product's handle: every statement through the metered Data API client. */
  handle: DatabaseHandle;
  tdb: TestDatabase;
  /** Direct MariaDB, for bulk setup and for playing the agent. */
  mysql: Kysely<Database>;
  mysqlUrl: string;
  close(): Promise<void>;
}

export async function openMeteredDatabase(): Promise<MeteredDatabase> {
  const scratch = await createMysqlDatabase();
  const server = await startDataApiServer({ mysqlUrl: scratch.url });
  const url =
    `data-api://${server.resourceArn}?secret=${encodeURIComponent(server.secretArn)}` +
    `&database=${scratch.name}&endpoint=${encodeURIComponent(server.endpoint)}&region=us-east-1`;
  const mysql = createDatabase(scratch.url);
  await migrateToLatest(mysql.db);
  const meter = createLimitMeter({ endpoint: server.endpoint });
  const handle = createDatabase(url, { dataApiClient: meter.client });
  const tdb: TestDatabase = {
    dialect: 'data-api',
    db: handle.db,
    capabilities: handle.capabilities,
    url,
    idGenerator: createIdGenerator(handle.db, { blockSize: 1000 }),
    dataApi: server,
    openAnother: () => createDatabase(url),
    close: async () => undefined,
  };
  return {
    meter,
    handle,
    tdb,
    mysql: mysql.db,
    mysqlUrl: scratch.url,
    async close() {
      await handle.close();
      meter.client.destroy();
      await mysql.close();
      await server.close();
      await scratch.drop();
    },
  };
}
