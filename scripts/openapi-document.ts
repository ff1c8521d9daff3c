/**
 * The OpenAPI document exactly as `GET /v1/openapi.json` serves it: the HTTP app over an in-memory SQLite database,
 * asked through its own router with a throwaway API client (the document needs credentials like every route but
 * health). `npm run gen:api-types` and the OpenAPI lint test read it from here.
 */
import { randomBytes } from 'node:crypto';
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import { ApiClientRepository } from '../db/repositories/api-client-repository';
import { createEngineServices } from '../app/engine-services';
import { createHttpApp, OPENAPI_PATH } from '../http/http-app';
import { ensureApiClients } from '../http/api/http-auth';

const quietLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function servedOpenApiDocument(): Promise<Record<string, unknown>> {
  const handle = createDatabase('sqlite::memory:');
  try {
    await migrateToLatest(handle.db);
    const services = createEngineServices(handle);
    const secret = randomBytes(16).toString('hex');
    await ensureApiClients(new ApiClientRepository(handle.db, services.ids, services.clock), `openapi-reader:${secret}:read`);
    const app = createHttpApp({ services, logger: quietLogger });
    const res = await app.request(OPENAPI_PATH, { headers: { authorization: `Basic ${Buffer.from(`openapi-reader:${secret}`).toString('base64')}` } });
    if (res.status !== 200) throw new Error(`${OPENAPI_PATH} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  } finally {
    await handle.close();
  }
}
