/**
 * The HTTP API (v1) as one Hono application, shared by the local mode, `kuroko server` and the API Lambda (behind
 * `hono/aws-lambda`). Every error leaves as the contract's body (see http-errors.ts); request bodies are bounded;
 * every route but `/v1/health` needs an API client's Basic credentials and a scope.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, type LoginLimits } from './login-limiter';
import { bodyLimit } from 'hono/body-limit';
import type { ApiClientRepository } from '../db/repositories/api-client-repository';
import type { DefinitionRepository } from '../db/repositories/definition-repository';
import type { QueryRepository } from '../db/repositories/query-repository';
import { createConsoleApp, type ConsoleOptions } from './console/console-app';
import type { EngineServices } from '../app/engine-services';
import { ApiClientAuthenticator, authenticate } from './api/http-auth';
import { ApiError, HTTP_STATUS, errorBody, errorResponse, toApiError, validationFailure } from './http-errors';
import type { HttpLogger } from './http-errors';
import { errors, registerRoutes, SECURITY_SCHEME } from './api/http-routes';
import { registerApiClientRoutes } from './api/api-client-routes';
import type { LogSink } from '../adapters/logs/file-log-sink';
import type { App, AppEnv } from './api/http-routes';
import { DEFAULT_HTTP_LIMITS, buildSchemas, healthSchema } from './api/http-schemas';
import type { HttpLimits } from './api/http-schemas';
import { errorMessage } from '../core/errors';

export const API_VERSION = '1.0.0';
export const HEALTH_PATH = '/v1/health';
export const OPENAPI_PATH = '/v1/openapi.json';
/** A database that has not answered `select 1` by then is reported unavailable rather than left hanging. */
const HEALTH_TIMEOUT_MS = 5_000;

export interface HttpAppDeps {
  /** The composition root (app/engine-services.ts): the clock, the ids and every store come from it. */
  services: EngineServices;
  /** Replace one of the services' stores (tests that make a read fail). */
  definitions?: DefinitionRepository;
  apiClients?: ApiClientRepository;
  queries?: QueryRepository;
  limits?: Partial<HttpLimits>;
  logger?: HttpLogger;
  /** Queues the waiting-execution stats report even when empty; default: the services' declared queues (D14). */
  declaredQueues?: readonly string[];
  /** Called after a launch, retry or skip gave the processor work. */
  onLaunch?: () => void;
  /** Called after any request but GET, HEAD and OPTIONS that succeeded (below 400), with its method. */
  onWrite?: (method: string) => void;
  /** Where the agents stream command output, for the execution output endpoint (none: that endpoint answers 404). */
  outputs?: Pick<LogSink, 'read'>;
  /** Serve the web console at `/` too (http/console). */
  console?: ConsoleOptions;
  /** Failed logins allowed per client name and per address (login-limiter.ts has the defaults). */
  loginLimits?: Partial<LoginLimits>;
  /** The caller's address for the per-address login limit; by default the TCP peer or API Gateway's sourceIp. */
  clientAddress?: (c: Context) => string | undefined;
}

/**
 * The caller's address as the runtime saw it: API Gateway's `sourceIp` under hono/aws-lambda, the socket's peer under
 * @hono/node-server. X-Forwarded-For is not read: anyone can write it.
 */
function peerAddress(c: Context): string | undefined {
  const env = c.env as { requestContext?: { http?: { sourceIp?: unknown }; identity?: { sourceIp?: unknown } }; incoming?: { socket?: { remoteAddress?: unknown } } } | undefined;
  const candidates = [env?.requestContext?.http?.sourceIp, env?.requestContext?.identity?.sourceIp, env?.incoming?.socket?.remoteAddress];
  const found = candidates.find((a): a is string => typeof a === 'string' && a !== '');
  return found;
}

/** Logs as JSON lines on stderr; composition roots usually pass Powertools' Logger instead. */
export const consoleHttpLogger: HttpLogger = {
  info: (message, extra) => console.error(JSON.stringify({ level: 'INFO', message, ...extra })),
  warn: (message, extra) => console.error(JSON.stringify({ level: 'WARN', message, ...extra })),
  error: (message, extra) => console.error(JSON.stringify({ level: 'ERROR', message, ...extra })),
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_CONTENT_TYPE = /^application\/([a-z-.]+\+)?json/i;

/**
 * A JSON request with an empty body means "no fields": Kuroko2 clients launch with `Content-Type: application/json`
 * and nothing else, which a JSON parser would call malformed.
 */
const emptyJsonBodyAsObject: MiddlewareHandler = async (c, next) => {
  const contentType = c.req.header('content-type');
  if (BODY_METHODS.has(c.req.method) && contentType && JSON_CONTENT_TYPE.test(contentType) && c.req.raw.body) {
    const length = c.req.header('content-length');
    if (length === '0' || (length === undefined && (await c.req.raw.clone().text()).trim() === '')) {
      c.req.raw = new Request(c.req.raw, { body: '{}' });
    }
  }
  await next();
};

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Builds the v1 API over the engine services and their stores. */
export function createHttpApp(deps: HttpAppDeps): App {
  const { services } = deps;
  const { clock, stores } = services;
  const logger = deps.logger ?? consoleHttpLogger;
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const declaredQueues = deps.declaredQueues ?? services.declaredQueues;
  const definitions = deps.definitions ?? stores.definitions;
  const apiClients = deps.apiClients ?? stores.apiClients;
  const queries = deps.queries ?? stores.queries;
  const limiter = new LoginLimiter(stores.loginLimits, { ...DEFAULT_LOGIN_LIMITS, ...deps.loginLimits }, () => clock.now().getTime());
  const authenticator = new ApiClientAuthenticator(apiClients, undefined, limiter);

  const app: App = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationFailure(result.target, result.error);
    },
  });

  app.onError((error, c) => errorResponse(c, toApiError(error, logger)));
  app.notFound((c) => c.json(errorBody(HTTP_STATUS.notFound, `no route for ${c.req.method} ${c.req.path}`), HTTP_STATUS.notFound));

  app.use(
    '*',
    bodyLimit({
      maxSize: limits.maxBodyBytes,
      // The rest of the body is never read, so the connection cannot carry another request: saying so makes a
      // pooling client open a new one instead of a socket hang-up on its next request. Only where our own Node
      // server holds the socket (@hono/node-server passes it as `incoming`); behind API Gateway the gateway does.
      onError: (c) => {
        const onNodeSocket = typeof c.env === 'object' && c.env !== null && 'incoming' in c.env;
        throw new ApiError(HTTP_STATUS.payloadTooLarge, `the request body is larger than ${limits.maxBodyBytes} bytes`, [], onNodeSocket ? { Connection: 'close' } : {});
      },
    }),
  );
  app.use('*', emptyJsonBodyAsObject);
  const { onWrite } = deps;
  if (onWrite) {
    app.use('*', async (c, next) => {
      await next();
      if (!READ_METHODS.has(c.req.method) && c.res.status < HTTP_STATUS.badRequest) onWrite(c.req.method);
    });
  }

  // Health answers load balancers and probes, which hold no credentials.
  app.get(HEALTH_PATH, async (c) => {
    try {
      await withTimeout(queries.ping(), HEALTH_TIMEOUT_MS);
      return c.json(healthSchema.parse({ status: 'ok' }), HTTP_STATUS.ok);
    } catch (error) {
      logger.error('health check failed', { error: errorMessage(error) });
      return c.json({ status: 'unavailable', ...errorBody(HTTP_STATUS.unavailable, 'the database does not answer') }, HTTP_STATUS.unavailable);
    }
  });
  const requireClient = authenticate(authenticator, logger, deps.clientAddress ?? peerAddress);
  app.use('/v1/*', async (c, next) => (c.req.path === HEALTH_PATH ? next() : requireClient(c, next)));

  registerRoutes(app, {
    definitions,
    queries,
    operations: services.operations,
    schemas: buildSchemas(limits),
    declaredQueues,
    onLaunch: deps.onLaunch ?? (() => undefined),
    outputs: deps.outputs,
  });

  registerApiClientRoutes(app, apiClients);

  if (deps.console) {
    const consoleApp = createConsoleApp({ ...deps.console, services, definitions, queries, declaredQueues, onLaunch: deps.onLaunch ?? (() => undefined), logger });
    app.route('/', consoleApp);
  }

  app.openAPIRegistry.registerComponent('securitySchemes', SECURITY_SCHEME, { type: 'http', scheme: 'basic' });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: HEALTH_PATH,
    summary: 'Liveness: 200 once the database answers, else 503; needs no credentials',
    operationId: 'getHealth',
    security: [],
    responses: {
      200: { description: 'the database answers', content: { 'application/json': { schema: healthSchema } } },
      503: { description: 'the database does not answer' },
    },
  });
  const { [HTTP_STATUS.unauthorized]: unauthorizedResponse } = errors();
  if (!unauthorizedResponse) throw new Error('errors() always declares 401');
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: OPENAPI_PATH,
    summary: 'This document (it needs credentials like every route but health)',
    operationId: 'getOpenApiDocument',
    security: [{ [SECURITY_SCHEME]: [] }],
    responses: { 200: { description: 'an OpenAPI 3 document', content: { 'application/json': { schema: { type: 'object' } } } }, 401: unauthorizedResponse },
  });
  app.doc(OPENAPI_PATH, {
    openapi: '3.0.3',
    info: {
      title: 'Kuroko Serverless API',
      version: API_VERSION,
      description: "Kuroko2's /v1 API with extensions. Errors are {status_code, error_code, message[, errors]}.",
      license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
    },
    // Relative: the host that served this document (a deployment's URL is known only there).
    servers: [{ url: '/', description: 'the server that serves this document' }],
    security: [{ [SECURITY_SCHEME]: [] }],
  });
  return app;
}
