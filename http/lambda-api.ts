/**
 * The API function's work (functions/api/handler.ts is its entry point): the shared Hono app (http/http-app.ts) behind `hono/aws-lambda`, over the runtime's services and
 * stores. A launch, retry or skip nudges the processor function so the first step does not wait for its schedule.
 * With an OpenID Connect provider configured, the web console is served next to `/v1`: its cookie-signing key and
 * the OIDC client secret are read from Secrets Manager once per container, on the first request.
 * Every successful write (the app's onWrite: any method but GET, HEAD and OPTIONS) ends an idle sleep, so the work
 * it created does not wait for the sleep's end (app/lambda/lambda-sleep.ts).
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { handle } from 'hono/aws-lambda';
import type { LambdaContext, LambdaEvent } from 'hono/aws-lambda';
import { CloudWatchLogSink } from '../adapters/aws/cloudwatch-log-sink';
import { readSecretString } from '../adapters/aws/secrets';
import type { ConsoleConfig } from './console/console-config';
import { consoleConfigFromBinding } from './console-binding';
import { createHttpApp } from './http-app';
import type { ApiConfig, ApiConsoleBinding } from '../app/config/config';
import { lazyRetrying } from '../app/lazy-retrying';
import { NUDGE_TARGET } from '../app/run-while-busy';
import type { LambdaRuntime } from '../app/lambda/lambda-runtime';
import { lambdaNudgers } from '../app/lambda/lambda-tick';

/** Reads the console's two secrets; the rest of its configuration was checked with the api's. */
async function loadConsoleConfig(binding: ApiConsoleBinding): Promise<ConsoleConfig> {
  const secrets = new SecretsManagerClient({});
  const read = (secretId: string) => readSecretString(secrets, secretId);
  const [signingKey, clientSecret] = await Promise.all([read(binding.signingSecretArn), read(binding.oidcClientSecretArn)]);
  return consoleConfigFromBinding(binding, { signingKey, clientSecret });
}

/** One request's work. */
export function apiFunction(runtime: LambdaRuntime<ApiConfig>) {
  const { config } = runtime;
  const processor = lambdaNudgers(runtime.log, { processor: config.processorFunctionName })[NUDGE_TARGET.processor];
  // One Lambda container serves one request at a time, so these flags belong to the current request.
  let processorHasWork = false;
  /** The method of a write that succeeded: it ends an idle sleep. */
  let wrote: string | undefined;

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
      onWrite: (method) => {
        wrote = method;
      },
      ...(consoleConfig ? { console: { config: consoleConfig } } : {}),
    });
    return handle(app);
  };
  // A failed secret read fails that request (the runtime logs it) and the next one retries.
  const ready = lazyRetrying(buildHandler);

  return async (event: LambdaEvent, context: LambdaContext) => {
    processorHasWork = false;
    wrote = undefined;
    const response = await (await ready())(event, context);
    // Lambda freezes the container on return: the nudge and the wake are sent before, not left in flight. Neither
    // fails the request: a failed nudge waits for the processor's schedule, a failed wake for the sleep's end.
    await Promise.all([processorHasWork ? processor?.nudge() : undefined, wrote ? runtime.sleep.wake(`api ${wrote}`, new Date()) : undefined]);
    return response;
  };
}
