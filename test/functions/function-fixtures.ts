/**
 * Builders for invoking the Lambda handlers as AWS would: the environment the CDK app sets (pointed at a test
 * database behind the local Data API server), a Lambda context, and the events EventBridge and the CDK Provider
 * framework send.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { parseDatabaseUrl } from '../../db/connection';
import { ENV_KEYS } from '../../app/config/env-keys';
import type { DatabaseResuming } from '../../app/lambda/lambda-resume';
import type { Asleep } from '../../app/lambda/lambda-sleep';
import type { TestDatabase } from '../helpers/test-database';

/** The function names and the doorbell queue the handler tests configure (functionEnv's extras) and expect invoked. */
export const NOTIFIER = 'kuroko-test-notifier';
export const PROCESSOR = 'kuroko-test-processor';
export const DOORBELL = 'https://sqs.us-east-1.amazonaws.com/123456789012/kuroko-test-doorbell';

/** The environment of a function bound to the test database (as EngineFunction.bindDatabase sets it). */
export function functionEnv(tdb: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  const url = parseDatabaseUrl(tdb.url);
  if (url.dialect !== 'data-api' || tdb.dataApi === undefined) throw new Error('handler tests need a data-api test database');
  return {
    [ENV_KEYS.stage]: 'test',
    [ENV_KEYS.dbClusterArn]: url.resourceArn,
    [ENV_KEYS.dbSecretArn]: url.secretArn,
    [ENV_KEYS.dbName]: url.database,
    [ENV_KEYS.dataApiEndpoint]: tdb.dataApi.endpoint,
    [ENV_KEYS.powertoolsLogLevel]: 'ERROR',
    AWS_REGION: 'us-east-1',
    ...extra,
  };
}

/** A tick's result that must be neither an idle sleep (these tests configure none) nor a skip for a resuming database. */
export function awake<T extends object>(result: T | Asleep | DatabaseResuming): T {
  if ('asleepUntil' in result) throw new Error(`the tick slept until ${result.asleepUntil}`);
  if ('databaseResuming' in result) throw new Error('the tick met a resuming database');
  return result;
}

/** Sets the variables on process.env (handlers read it at import, like a cold start). */
export function applyEnv(env: Record<string, string>): void {
  for (const [key, value] of Object.entries(env)) process.env[key] = value;
}

/** A Lambda context with `remainingMs` left (a function of the call count, to play a clock running down). */
export function lambdaContext(functionName: string, remainingMs: () => number = () => 60_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: `req-${Math.floor(performance.now())}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/03/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** An EventBridge scheduled event exactly as a `rate(1 minute)` rule delivers it. */
export function scheduledEvent(rule: string, time = '2026-03-01T12:00:00Z') {
  return {
    version: '0',
    id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time,
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:123456789012:rule/${rule}`],
    detail: {},
  };
}

/** The onEvent input the CDK Provider framework passes for a custom resource request. */
export function customResourceEvent(requestType: 'Create' | 'Update' | 'Delete', physicalResourceId?: string) {
  return {
    RequestType: requestType,
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:kuroko-test-MigrationProviderframeworkonEvent',
    ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/response',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/kuroko-test-engine/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b',
    RequestId: 'b5a9c4e2-1f3d-4c8e-9a7b-6d5e4f3a2b1c',
    LogicalResourceId: 'Migrations',
    ResourceType: 'Custom::KurokoMigrations',
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:kuroko-test-MigrationProviderframeworkonEvent',
      Trigger: '2026-03-01T12:00:00.000Z',
    },
    ...(requestType === 'Update' ? { OldResourceProperties: { Trigger: '2026-02-01T12:00:00.000Z' } } : {}),
    ...(physicalResourceId !== undefined ? { PhysicalResourceId: physicalResourceId } : {}),
  };
}

/** An API Gateway HTTP API event, payload format 2.0, as the `$default` stage delivers it for `routeKey`. */
export function httpApiEvent(
  method: string,
  path: string,
  options: { routeKey?: string; headers?: Record<string, string>; body?: string; query?: string } = {},
): APIGatewayProxyEventV2 {
  const now = new Date('2026-03-01T12:00:00Z');
  return {
    version: '2.0',
    routeKey: options.routeKey ?? `ANY /v1/{proxy+}`,
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: {
      accept: 'application/json',
      host: 'abcdef1234.execute-api.us-east-1.amazonaws.com',
      'user-agent': 'curl/8.5.0',
      'x-amzn-trace-id': 'Root=1-65e1c2a0-0123456789abcdef01234567',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...options.headers,
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef1234',
      domainName: 'abcdef1234.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abcdef1234',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: 'Tm9uZQ-EXAMPLE=',
      routeKey: options.routeKey ?? `ANY /v1/{proxy+}`,
      stage: '$default',
      time: '01/Mar/2026:12:00:00 +0000',
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
    ...(options.body !== undefined ? { body: options.body } : {}),
  };
}
