import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { ENV_KEYS } from '../../app/config/env-keys';
import { ensureApiClients } from '../../http/api/http-auth';
import type * as ApiModule from '../../functions/api/handler';
import { basicAuth } from '../api/api-fixtures';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, functionEnv, httpApiEvent, lambdaContext, PROCESSOR } from './function-fixtures';

const API = 'kuroko-test-api';
const LAUNCHER = { name: 'batch-launcher', secret: 'launch-secret-0001' };
const READER = { name: 'dashboard', secret: 'read-secret-000001' };
const lambda = mockClient(LambdaClient);

let tdb: TestDatabase;
let api: typeof ApiModule;

beforeAll(async () => {
  tdb = await createTestDatabase('data-api');
  const services = servicesFor(tdb);
  await ensureApiClients(
    new ApiClientRepository(tdb.db, services.ids, services.clock),
    `${LAUNCHER.name}:${LAUNCHER.secret}:launch,${READER.name}:${READER.secret}:read`,
  );
  applyEnv(functionEnv(tdb, { [ENV_KEYS.processorFunction]: PROCESSOR, [ENV_KEYS.declaredQueues]: '["@default"]' }));
  api = await import('../../functions/api/handler');
});
afterAll(async () => {
  await tdb?.close();
});
beforeEach(() => {
  lambda.reset();
  lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
});

const invoke = async (event: APIGatewayProxyEventV2) =>
  (await api.handler(event as never, lambdaContext(API) as never)) as APIGatewayProxyResult & { headers: Record<string, string> };

const invokedFunctions = () =>
  lambda.commandCalls(InvokeCommand).map((c) => ({
    name: c.args[0].input.FunctionName,
    type: c.args[0].input.InvocationType,
    payload: c.args[0].input.Payload === undefined ? undefined : (JSON.parse(new TextDecoder().decode(c.args[0].input.Payload as Uint8Array)) as unknown),
  }));

describe('api handler', () => {
  it('answers GET /v1/health without credentials in the Lambda proxy response shape', async () => {
    const response = await invoke(httpApiEvent('GET', '/v1/health', { routeKey: 'GET /v1/health' }));
    expect(response.statusCode).toBe(200);
    expect(response.isBase64Encoded).toBe(false);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
    expect(invokedFunctions()).toEqual([]);
  });

  it('launches an instance for an authenticated POST and nudges the processor', async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n');
    const response = await invoke(
      httpApiEvent('POST', '/v1/definitions/1/instances', {
        headers: { authorization: basicAuth(LAUNCHER.name, LAUNCHER.secret), 'content-type': 'application/json' },
        body: JSON.stringify({ env: { GREETING: 'hello' } }),
      }),
    );
    expect(response.statusCode).toBe(201);
    const body = JSON.parse(response.body) as { id: number; status: string; job_definition_id: number; launched_by: string };
    expect(body).toMatchObject({ status: 'working', job_definition_id: 1, launched_by: `instances API (${LAUNCHER.name})` });
    const row = await tdb.db.selectFrom('job_instances').select(['id', 'job_definition_id']).where('id', '=', body.id).executeTakeFirstOrThrow();
    expect(Number(row.job_definition_id)).toBe(1);
    // The processor takes the nudge event (a payload-less invoke would fail its event check).
    expect(invokedFunctions()).toEqual([{ name: PROCESSOR, type: 'Event', payload: { nudge: true } }]);
  });

  it('answers the launch even when the processor nudge fails (the tick picks the work up)', async () => {
    await insertDefinition(tdb.db, 4, 'noop:\n');
    lambda.on(InvokeCommand).rejects(new Error('TooManyRequestsException'));
    const response = await invoke(
      httpApiEvent('POST', '/v1/definitions/4/instances', {
        headers: { authorization: basicAuth(LAUNCHER.name, LAUNCHER.secret), 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    expect(response.statusCode).toBe(201);
    expect(invokedFunctions()).toHaveLength(1);
  });

  it('refuses a launch without credentials, or with a read-only client, and nudges nobody', async () => {
    await insertDefinition(tdb.db, 2, 'noop:\n');
    const anonymous = await invoke(httpApiEvent('POST', '/v1/definitions/2/instances', { body: '{}', headers: { 'content-type': 'application/json' } }));
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic/);
    const reader = await invoke(
      httpApiEvent('POST', '/v1/definitions/2/instances', {
        body: '{}',
        headers: { 'content-type': 'application/json', authorization: basicAuth(READER.name, READER.secret) },
      }),
    );
    expect(reader.statusCode).toBe(403);
    expect(await tdb.db.selectFrom('job_instances').select('id').where('job_definition_id', '=', 2).execute()).toEqual([]);
    expect(invokedFunctions()).toEqual([]);
  });

  it('passes the query string of a payload 2.0 event through to the routes', async () => {
    await insertDefinition(tdb.db, 3, 'noop:\n');
    const services = servicesFor(tdb);
    const older = await services.operations.launch({ definitionId: 3, launchedBy: 'test' });
    const newer = await services.operations.launch({ definitionId: 3, launchedBy: 'test' });
    const list = (query: string) =>
      invoke(httpApiEvent('GET', '/v1/definitions/3/instances', { query, headers: { authorization: basicAuth(READER.name, READER.secret) } }));

    const page = await list('limit=1');
    expect(page.statusCode).toBe(200);
    expect((JSON.parse(page.body) as { id: number }[]).map((i) => i.id)).toEqual([newer.instance.id]);
    const next = await list(`limit=1&before_id=${newer.instance.id}`);
    expect((JSON.parse(next.body) as { id: number }[]).map((i) => i.id)).toEqual([older.instance.id]);
    const invalid = await list('limit=zero');
    expect(invalid.statusCode).toBe(400);
  });
});

describe('api handler with the console', () => {
  const SIGNING_KEY_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-console-key-AbC123';
  const CLIENT_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/dev/oidc-client';
  const BASE_URL = 'https://abcdef1234.execute-api.us-east-1.amazonaws.com/';
  const consoleEnv = {
    [ENV_KEYS.consoleSecretArn]: SIGNING_KEY_ARN,
    [ENV_KEYS.oidcIssuer]: 'https://accounts.example.com',
    [ENV_KEYS.oidcClientId]: 'kuroko-console',
    [ENV_KEYS.oidcClientSecretArn]: CLIENT_SECRET_ARN,
    [ENV_KEYS.oidcAllowedDomains]: 'example.com',
    [ENV_KEYS.consoleAdmins]: 'ops@example.com',
    [ENV_KEYS.baseUrl]: BASE_URL,
  };
  const secrets = mockClient(SecretsManagerClient);
  let withConsole: typeof ApiModule;
  const invokeConsole = async (event: APIGatewayProxyEventV2) =>
    (await withConsole.handler(event as never, lambdaContext(API) as never)) as APIGatewayProxyResult & { headers: Record<string, string> };
  const page = (path: string, routeKey = 'ANY /{proxy+}') =>
    httpApiEvent('GET', path, { routeKey, headers: { accept: 'text/html' } });

  beforeAll(async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SIGNING_KEY_ARN }).resolves({ SecretString: 'k'.repeat(64) });
    secrets.on(GetSecretValueCommand, { SecretId: CLIENT_SECRET_ARN }).resolves({ SecretString: 'oidc-client-secret' });
    applyEnv(consoleEnv);
    // A second cold start, this time with the console configured.
    vi.resetModules();
    withConsole = await import('../../functions/api/handler');
  });
  afterAll(() => {
    for (const key of Object.keys(consoleEnv)) delete process.env[key];
    secrets.restore();
  });

  it('sends an anonymous visitor of / to the sign-in page, which offers the OIDC provider only', async () => {
    const home = await invokeConsole(page('/', 'GET /'));
    expect(home.statusCode).toBe(303);
    expect(home.headers['location']).toMatch(/^\/sign_in/);
    const signIn = await invokeConsole(page('/sign_in'));
    expect(signIn.statusCode).toBe(200);
    expect(signIn.headers['content-type']).toMatch(/^text\/html/);
    expect(signIn.body).toContain('accounts.example.com');
    expect(signIn.body).toContain('/auth/oidc');
    // The Lambda has no terminal for a one-time link: it is never offered.
    expect(signIn.body).not.toContain('kuroko dev');
  });

  it('read both secrets by ARN, once per container', async () => {
    await invokeConsole(page('/sign_in'));
    const ids = secrets.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId);
    expect(ids.sort()).toEqual([CLIENT_SECRET_ARN, SIGNING_KEY_ARN].sort());
  });

  it('fails the first request when a secret cannot be read, and reads again on the next one', async () => {
    // Call counts start again, so the once-only failure is the next read.
    secrets.reset();
    secrets.on(GetSecretValueCommand, { SecretId: SIGNING_KEY_ARN }).rejectsOnce(new Error('AccessDeniedException')).resolves({ SecretString: 'k'.repeat(64) });
    secrets.on(GetSecretValueCommand, { SecretId: CLIENT_SECRET_ARN }).resolves({ SecretString: 'oidc-client-secret' });
    vi.resetModules();
    const fresh = await import('../../functions/api/handler');
    const call = () => fresh.handler(page('/sign_in') as never, lambdaContext(API) as never) as Promise<APIGatewayProxyResult>;
    await expect(call()).rejects.toThrow('AccessDeniedException');
    expect((await call()).statusCode).toBe(200);
  });

  it('still answers the API next to the console', async () => {
    const response = await invokeConsole(httpApiEvent('GET', '/v1/health', { routeKey: 'GET /v1/health' }));
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
  });
});

describe('api handler without the console', () => {
  it('answers 404 on the console routes, as before', async () => {
    for (const path of ['/', '/sign_in', '/definitions']) {
      const response = await invoke(httpApiEvent('GET', path, { routeKey: path === '/' ? 'GET /' : 'ANY /{proxy+}', headers: { accept: 'text/html' } }));
      expect(response.statusCode, path).toBe(404);
    }
  });
});
