/**
 * The functions over a paused Aurora cluster: the local Data API server answers DatabaseResumingException (HTTP
 * 400, as the SDK parses it) from the first call after a pause until its resume ends, as the service does
 * (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html, Errors;
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html).
 * The api and the ticks here wait at most 2 s (KUROKO_DB_RESUME_WAIT_SECONDS); the migrator keeps its own budget.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrationNames } from '../../db/migrator';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { ENV_KEYS } from '../../app/config/env-keys';
import { ensureApiClients } from '../../http/api/http-auth';
import type * as ApiModule from '../../functions/api/handler';
import type * as MigratorModule from '../../functions/migrator/handler';
import type * as MonitorModule from '../../functions/monitor/handler';
import type * as SchedulerModule from '../../functions/scheduler/handler';
import { basicAuth } from '../api/api-fixtures';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, customResourceEvent, functionEnv, httpApiEvent, lambdaContext, scheduledEvent } from './function-fixtures';

const READER = { name: 'dashboard', secret: 'read-secret-0123456789' };
const LONG_RESUME_MS = 60_000;
const SHORT_RESUME_MS = 500;
const lambda = mockClient(LambdaClient);

let tdb: TestDatabase;
let fresh: TestDatabase;
let api: typeof ApiModule;
let scheduler: typeof SchedulerModule;
let monitor: typeof MonitorModule;
let migrator: typeof MigratorModule;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  fresh = await createTestDatabase('data-api', { migrate: false });
  const services = servicesFor(tdb);
  await ensureApiClients(new ApiClientRepository(tdb.db, services.ids, services.clock), `${READER.name}:${READER.secret}:read`);
  await insertDefinition(tdb.db, 1, 'noop:\n');
  applyEnv(functionEnv(tdb, { [ENV_KEYS.declaredQueues]: '["@default"]', [ENV_KEYS.dbResumeWaitSeconds]: '2' }));
  [api, scheduler, monitor] = await Promise.all([
    import('../../functions/api/handler'),
    import('../../functions/scheduler/handler'),
    import('../../functions/monitor/handler'),
  ]);
  // The migrator is read with its own budget (minutes), on a database without a schema.
  delete process.env[ENV_KEYS.dbResumeWaitSeconds];
  applyEnv(functionEnv(fresh));
  migrator = await import('../../functions/migrator/handler');
});
afterAll(async () => {
  await Promise.all([api, scheduler, monitor, migrator].map((m) => m?.runtime.close()));
  await tdb?.close();
  await fresh?.close();
});
beforeEach(async () => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  // Every test starts on an awake cluster: a zero-length resume ends at the next call.
  tdb.dataApi?.pause(0);
  await tdb.db.selectFrom('job_definitions').select('id').execute();
});

const server = () => {
  if (!tdb.dataApi) throw new Error('a data-api test database has its server');
  return tdb.dataApi;
};
const listDefinitions = async () =>
  (await api.handler(
    httpApiEvent('GET', '/v1/definitions', { headers: { authorization: basicAuth(READER.name, READER.secret) } }) as never,
    lambdaContext('kuroko-test-api') as never,
  )) as APIGatewayProxyResult & { headers: Record<string, string> };

describe('the api over a paused cluster', () => {
  it('waits out a short resume and answers the request', async () => {
    server().pause(SHORT_RESUME_MS);
    const response = await listDefinitions();
    expect(response.statusCode).toBe(200);
    expect(server().resumeCount()).toBeGreaterThan(0);
    expect(server().resumingAnswers()).toBeGreaterThan(0);
  });

  it('answers 503 with Retry-After in the contract error body, never 500, when the resume outlasts its wait', async () => {
    server().pause(LONG_RESUME_MS);
    const response = await listDefinitions();
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('15');
    expect(JSON.parse(response.body)).toEqual({
      status_code: 503,
      error_code: 'service_unavailable',
      message: 'the database is resuming from an automatic pause; retry shortly',
    });
  });
});

describe('a tick over a paused cluster', () => {
  it('logs and returns normally (no failed invocation) when the resume outlasts its wait', async () => {
    server().pause(LONG_RESUME_MS);
    const tick = await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick'), lambdaContext('kuroko-test-scheduler'));
    expect(tick).toEqual({ databaseResuming: true, retryAfterSeconds: 15 });
    const monitorTick = await monitor.handler(scheduledEvent('kuroko-test-MonitorTick'), lambdaContext('kuroko-test-monitor'));
    expect(monitorTick).toEqual({ databaseResuming: true, retryAfterSeconds: 15 });
  });

  it('runs its pass once a short resume has ended', async () => {
    server().pause(SHORT_RESUME_MS);
    const tick = await scheduler.handler(scheduledEvent('kuroko-test-SchedulerTick'), lambdaContext('kuroko-test-scheduler'));
    expect(tick).not.toHaveProperty('databaseResuming');
    expect(tick).toHaveProperty('launched');
    expect(server().clusterState()).toBe('available');
  });
});

describe('the migrator custom resource over a paused cluster', () => {
  it('waits for the resume and migrates (a redeploy after an idle hour)', async () => {
    if (!fresh.dataApi) throw new Error('a data-api test database has its server');
    fresh.dataApi.pause(SHORT_RESUME_MS);
    const result = await migrator.handler(customResourceEvent('Update', 'kuroko-migrations-x'), lambdaContext('kuroko-test-migrator', () => 300_000));
    expect(result.Data).toEqual({ Applied: migrationNames().length, Latest: migrationNames().at(-1) });
    expect(fresh.dataApi.resumeCount()).toBe(1);
  });
});
