/**
 * The API Lambda: the shared Hono app behind `hono/aws-lambda`. Configuration is parsed once per container; a
 * launch, retry or skip nudges the processor function so the first step does not wait for its schedule.
 * With an OpenID Connect provider configured, the web console is served next to `/v1`: its cookie-signing key
 * and the OIDC client secret are read from Secrets Manager once per container, on the first request.
 * Every successful write (any method but GET, HEAD and OPTIONS) ends an idle sleep, so the work it created does
 * not wait for the sleep's end (functions/shared/lambda-sleep.ts).
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readSecretString } from '../../aws/secrets';
import { handle } from 'hono/aws-lambda';
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { CloudWatchLogSink } from '../../agent/cloudwatch-log-sink';
import { createDatabase } from '../../db/connection';
import { CONSOLE_ENV_KEYS, readConsoleConfig, type ConsoleConfig } from '../console/console-config';
import { parseApiConfig, type ApiConsoleBinding } from '../shared/config';
import { createEngineServices } from '../shared/engine-services';
import { createHttpApp } from '../shared/http-app';
import { dataApiUrl, logPort } from '../shared/lambda-runtime';
import { sleepGateFor } from '../shared/lambda-sleep';
import { errorMessage, describeError } from '../../core/errors';

const config = parseApiConfig(process.env);
const logger = new Logger({ logLevel: config.logLevel });

const services = createEngineServices(createDatabase(dataApiUrl(config.database)), { declaredQueues: config.declaredQueues });
const lambda = new LambdaClient({});
const sleep = sleepGateFor(config.sleepParameter, logPort(logger));
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
// One Lambda container serves one request at a time, so a module-level flag belongs to the current request.
let processorHasWork = false;

/** Reads the console's secrets and checks the whole console configuration (readConsoleConfig's rules). */
async function loadConsoleConfig(binding: ApiConsoleBinding): Promise<ConsoleConfig> {
  const secrets = new SecretsManagerClient({});
  const read = (secretId: string) => readSecretString(secrets, secretId);
  const [signingKey, clientSecret] = await Promise.all([read(binding.signingSecretArn), read(binding.oidcClientSecretArn)]);
  return readConsoleConfig(
    {
      [CONSOLE_ENV_KEYS.secret]: signingKey,
      [CONSOLE_ENV_KEYS.oidcIssuer]: binding.oidcIssuer,
      [CONSOLE_ENV_KEYS.oidcClientId]: binding.oidcClientId,
      [CONSOLE_ENV_KEYS.oidcClientSecret]: clientSecret,
      [CONSOLE_ENV_KEYS.oidcAllowedDomains]: binding.allowedDomains.join(','),
      [CONSOLE_ENV_KEYS.admins]: binding.admins.join(','),
      [CONSOLE_ENV_KEYS.baseUrl]: binding.baseUrl,
    },
    // A Lambda has no terminal to print a one-time link to: OIDC is the only way in.
    { localSignIn: 'never' },
  );
}

const buildHandler = async () => {
  const consoleConfig = config.console ? await loadConsoleConfig(config.console) : undefined;
  const app = createHttpApp({
    services,
    logger: {
      info: (message, extra) => logger.info(message, extra ?? {}),
      warn: (message, extra) => logger.warn(message, extra ?? {}),
      error: (message, extra) => logger.error(message, extra ?? {}),
    },
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

// Built on the first request rather than at import, so a failed secret read fails that request and the next one
// retries, instead of the container failing its init; later requests reuse the promise.
let honoHandler: ReturnType<typeof buildHandler> | undefined;
const ready = () => {
  honoHandler ??= buildHandler().catch((error: unknown) => {
    honoHandler = undefined;
    logger.error('could not set up the api', { error: describeError(error) });
    throw error;
  });
  return honoHandler;
};

const apiHandler = async (event: LambdaEvent, context: LambdaContext) => {
  processorHasWork = false;
  const response = await (await ready())(event, context);
  if (processorHasWork && config.processorFunctionName) {
    try {
      await lambda.send(new InvokeCommand({ FunctionName: config.processorFunctionName, InvocationType: 'Event' }));
    } catch (error) {
      // The processor's own schedule picks the work up; a failed nudge only delays it.
      logger.warn('could not nudge the processor', { error: errorMessage(error) });
    }
  }
  if (!READ_METHODS.has(methodOf(event)) && response.statusCode < HTTP_BAD_REQUEST) await sleep.wake(`api ${methodOf(event)}`, new Date());
  return response;
};

const HTTP_BAD_REQUEST = 400;

/** The request method of a REST (v1) or HTTP API (v2) event. */
function methodOf(event: LambdaEvent): string {
  if ('httpMethod' in event) return event.httpMethod.toUpperCase();
  if ('requestContext' in event && 'http' in event.requestContext) return event.requestContext.http.method.toUpperCase();
  return 'GET';
}

export const handler = middy(apiHandler);
