/**
 * The API Lambda: the shared Hono app behind `hono/aws-lambda`. Configuration is parsed once per container; a
 * launch, retry or skip nudges the processor function so the first step does not wait for its schedule.
 * With an OpenID Connect provider configured, the web console is served next to `/v1`: its cookie-signing key
 * and the OIDC client secret are read from Secrets Manager once per container, on the first request.
 * Every successful write (any method but GET, HEAD and OPTIONS) ends an idle sleep, so the work it created does
 * not wait for the sleep's end (functions/shared/lambda-sleep.ts).
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readSecretString } from '../../aws/secrets';
import { createLambdaNudger, noopNudger } from '../../aws/lambda-nudger';
import { handle } from 'hono/aws-lambda';
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { CloudWatchLogSink } from '../../agent/cloudwatch-log-sink';
import type { ConsoleConfig } from '../console/console-config';
import { parseApiConfig, type ApiConsoleBinding } from '../shared/config';
import { createHttpApp } from '../shared/http-app';
import { consoleConfigFromBinding } from './console-binding';
import { createLambdaRuntime, lambdaHandler } from '../shared/lambda-runtime';
import { lazyRetrying } from '../shared/lazy-retrying';

const apiConfig = parseApiConfig(process.env);
export const runtime = createLambdaRuntime(apiConfig, { services: { declaredQueues: apiConfig.declaredQueues } });
const { config } = runtime;
const processor = config.processorFunctionName
  ? createLambdaNudger({ client: new LambdaClient({}), functionName: config.processorFunctionName, logger: runtime.log })
  : noopNudger;
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
// One Lambda container serves one request at a time, so a module-level flag belongs to the current request.
let processorHasWork = false;

/** Reads the console's two secrets; the rest of its configuration was checked with the api's. */
async function loadConsoleConfig(binding: ApiConsoleBinding): Promise<ConsoleConfig> {
  const secrets = new SecretsManagerClient({});
  const read = (secretId: string) => readSecretString(secrets, secretId);
  const [signingKey, clientSecret] = await Promise.all([read(binding.signingSecretArn), read(binding.oidcClientSecretArn)]);
  return consoleConfigFromBinding(binding, { signingKey, clientSecret });
}

const buildHandler = async () => {
  const consoleConfig = config.console ? await loadConsoleConfig(config.console) : undefined;
  const app = createHttpApp({
    services: runtime.services,
    logger: runtime.log,
    declaredQueues: config.declaredQueues,
    // The agents stream each command's output to this group; the output endpoint reads it back.
    ...(config.executionLogGroupName
      ? { outputs: new CloudWatchLogSink({ client: new CloudWatchLogsClient({}), logGroupName: config.executionLogGroupName }) }
      : {}),
    onLaunch: () => {
      processorHasWork = true;
    },
    ...(consoleConfig ? { console: { config: consoleConfig } } : {}),
  });
  return handle(app);
};

// A failed secret read fails that request (the runtime logs it) and the next one retries.
const ready = lazyRetrying(buildHandler);

export const handler = lambdaHandler(runtime, async (event: LambdaEvent, context: LambdaContext) => {
  processorHasWork = false;
  const response = await (await ready())(event, context);
  // Lambda freezes the container on return: the nudge is sent before, not left in flight. A failed nudge is only
  // logged (the processor's own schedule picks the work up).
  if (processorHasWork) await processor.nudge();
  if (!READ_METHODS.has(methodOf(event)) && response.statusCode < HTTP_BAD_REQUEST) await runtime.sleep.wake(`api ${methodOf(event)}`, new Date());
  return response;
});

const HTTP_BAD_REQUEST = 400;

/** The request method of a REST (v1) or HTTP API (v2) event. */
function methodOf(event: LambdaEvent): string {
  if ('httpMethod' in event) return event.httpMethod.toUpperCase();
  if ('requestContext' in event && 'http' in event.requestContext) return event.requestContext.http.method.toUpperCase();
  return 'GET';
}
