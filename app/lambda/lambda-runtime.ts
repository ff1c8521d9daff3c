/**
 * What every Lambda handler shares: the Data API database and the engine services with their stores (the
 * composition root, app/engine-services.ts), built once per container (module scope, reused by every warm
 * invocation), a Powertools logger, and the middy wrapping. The handler parses its configuration
 * (app/config/config.ts) and its event; the work is in app/lambda/*-function.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj, type MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';
import { KurokoError } from '../../core/errors';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { DEFAULT_RESUME_BUDGET_MS } from '../../db/dialects/data-api-retry';
import type { BaseConfig } from '../config/config';
import { dataApiUrl } from '../config/data-api-url';
import { createEngineServices, type EngineServices, type EngineServicesOptions } from '../engine-services';
import type { SleepGate } from '../../adapters/aws/sleep-gate';
import { sleepGateFor } from './lambda-sleep';

export interface LambdaRuntime<C extends BaseConfig> {
  readonly config: C;
  readonly logger: Logger;
  /** The logger for adapters and passes. */
  readonly log: LogPort;
  readonly handle: DatabaseHandle;
  /** Built on first use (the migrator never needs them). */
  readonly services: EngineServices;
  /** The idle-sleep hint (never asleep without a parameter). */
  readonly sleep: SleepGate;
  /** Closes the database (tests; a Lambda container simply ends). */
  close(): Promise<void>;
}

export interface LambdaRuntimeOptions {
  services?: EngineServicesOptions;
  /**
   * How long one Data API call waits out a resuming cluster (app/lambda/lambda-resume.ts RESUME_WAIT_MS);
   * the configuration's KUROKO_DB_RESUME_WAIT_SECONDS wins.
   */
  resumeWaitMs?: number;
  /** Use this handle instead of opening one from the configuration. */
  handle?: DatabaseHandle;
  /** Use this gate instead of the configured parameter's. */
  sleep?: SleepGate;
}

/** Opens the database and prepares the services for one container. */
export function createLambdaRuntime<C extends BaseConfig>(config: C, options: LambdaRuntimeOptions = {}): LambdaRuntime<C> {
  const logger = new Logger({ logLevel: config.logLevel, persistentKeys: { stage: config.stage } });
  const log = logPort(logger);
  const budgetMs = config.dbResumeWaitMs ?? options.resumeWaitMs ?? DEFAULT_RESUME_BUDGET_MS;
  // createDatabase connects nothing yet: the first statement does, inside the first invocation.
  const handle =
    options.handle ??
    createDatabase(dataApiUrl(config.database), {
      dataApiRetry: {
        budgetMs,
        onRetry: (retry) => (retry.reason === 'resuming' && retry.attempt > 1 ? undefined : log.info('Data API call retried', { ...retry })),
      },
    });
  let services: EngineServices | undefined;
  return {
    config,
    logger,
    log,
    handle,
    sleep: options.sleep ?? sleepGateFor(config.sleepParameter, log),
    get services() {
      services ??= createEngineServices(handle, { customTasks: config.customTasks, ...options.services });
      return services;
    },
    close: () => handle.close(),
  };
}

/** The logger as the small `(message, data)` port the adapters and passes take. */
export interface LogPort {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** Adapts a Powertools logger to LogPort. */
export function logPort(logger: Logger): LogPort {
  return {
    info: (message, data) => logger.info(message, { ...data }),
    warn: (message, data) => logger.warn(message, { ...data }),
    error: (message, data) => logger.error(message, { ...data }),
  };
}

/** Logs a failed invocation once, with the error's code, and lets middy rethrow it (Lambda then counts an error). */
export function logErrorsMiddleware(logger: Logger): MiddlewareObj {
  const logErrorsMiddlewareOnError = (request: { error: unknown }): void => {
    const error = request.error;
    const code = error instanceof KurokoError ? error.code : undefined;
    logger.error('invocation failed', { code, error: error instanceof Error ? error : String(error) });
  };
  return { onError: logErrorsMiddlewareOnError };
}

/** Wraps a handler with the shared middleware: Lambda context in every log line, and one error log. */
export function lambdaHandler<TEvent, TResult>(
  runtime: Pick<LambdaRuntime<BaseConfig>, 'logger'>,
  fn: (event: TEvent, context: Context) => Promise<TResult>,
): MiddyfiedHandler<TEvent, TResult> {
  return middy<TEvent, TResult>(fn)
    .use(injectLambdaContext(runtime.logger, { resetKeys: true }))
    .use(logErrorsMiddleware(runtime.logger));
}
