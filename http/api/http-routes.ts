/**
 * The v1 routes: one `createRoute` per endpoint (its scope, request and response schemas) and a thin handler that
 * parses, calls one service and maps the result. Responses are checked against their schema before they leave.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ForbiddenError, NotFoundError } from '../../core/errors';
import type { InstanceOperations } from '../../core/services/instance-operations';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import type { ApiScope } from '../../db/repositories/api-client-repository';
import type { LogSink } from '../../adapters/logs/file-log-sink';
import type { DefinitionRepository } from '../../db/repositories/definition-repository';
import type { QueryRepository } from '../../db/repositories/query-repository';
import { requireScope } from './http-auth';
import { requireAdHocLaunchRights } from '../launch-policy';
import type { AuthenticatedClient } from './http-auth';
import { HTTP_STATUS } from '../http-errors';
import {
  definitionInput,
  definitionResource,
  executionResource,
  instanceDetailResource,
  instanceResource,
  logResource,
  workerResource,
} from './http-resources';
import {
  countsSchema,
  definitionParams,
  definitionSchema,
  errorSchema,
  executionParams,
  executionSchema,
  instanceDetailSchema,
  instanceParams,
  instanceSchema,
  logSchema,
  tokenParams,
  workerParams,
  workerSchema,
  DEFAULT_PAGE_SIZE,
} from './http-schemas';
import type { HttpSchemas } from './http-schemas';

export type AppEnv = { Variables: { client: AuthenticatedClient } };
export type App = OpenAPIHono<AppEnv>;

/** What the handlers call. */
export interface RouteServices {
  definitions: DefinitionRepository;
  queries: QueryRepository;
  operations: InstanceOperations;
  schemas: HttpSchemas;
  declaredQueues: readonly string[];
  /** Nudges the processor after a launch, retry or skip (the local mode runs a pass; AWS invokes the function). */
  onLaunch: () => void;
  /** Where agents stream each command's whole output (files locally, CloudWatch Logs in AWS), if readable here. */
  outputs: Pick<LogSink, 'read'> | undefined;
}

const JSON_TYPE = 'application/json';

/** Largest window of output one request returns. */
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
const outputQuery = z.object({
  offset_bytes: z.coerce.number().int().min(0).optional(),
  max_bytes: z.coerce.number().int().min(1).max(MAX_OUTPUT_BYTES).optional(),
});
export const SECURITY_SCHEME = 'basicAuth';
const secured = [{ [SECURITY_SCHEME]: [] }];

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'malformed JSON or a value of the wrong type (bad_request)',
  401: 'missing or wrong credentials (unauthorized)',
  403: 'the client scope or the definition does not allow it (forbidden)',
  404: 'no such record (record_not_found)',
  409: 'the current state does not allow it (conflict)',
  413: 'the body is too large',
  415: 'the body is not application/json',
  422: 'well-formed but invalid (unprocessable_entity)',
  429: 'too many failed logins for this client name or address; see Retry-After (too_many_requests)',
  503: 'the database is resuming or unreachable; try again after Retry-After seconds (service_unavailable)',
};

/** The header every 401 carries (the contract: `WWW-Authenticate: Basic`). */
export const UNAUTHORIZED_HEADERS = {
  'WWW-Authenticate': { description: 'the scheme to authenticate with: `Basic realm="..."`', schema: { type: 'string' as const } },
};

/** The header every 429 and 503 carries: the seconds to wait before trying again. */
const RETRY_AFTER_HEADERS = {
  'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'string' as const } },
};

/** The error answers of a route: 401 and 403 always, then the given statuses. */
export function errors(...statuses: number[]) {
  const out: Record<number, { description: string; headers?: typeof UNAUTHORIZED_HEADERS | typeof RETRY_AFTER_HEADERS; content: { [JSON_TYPE]: { schema: typeof errorSchema } } }> = {};
  // Every authenticated route can answer 429 (http/login-limiter.ts) before its own checks run, and 503
  // while the database resumes or is unreachable (http-errors.ts).
  for (const status of [401, 403, 429, ...statuses, 503]) {
    out[status] = {
      description: ERROR_DESCRIPTIONS[status] ?? 'error',
      ...(status === HTTP_STATUS.unauthorized ? { headers: UNAUTHORIZED_HEADERS } : {}),
      ...(status === 429 || status === 503 ? { headers: RETRY_AFTER_HEADERS } : {}),
      content: { [JSON_TYPE]: { schema: errorSchema } },
    };
  }
  return out;
}

const jsonOf = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: { [JSON_TYPE]: { schema } } });
const bodyOf = <S extends z.ZodType>(schema: S, required: boolean) => ({ required, content: { [JSON_TYPE]: { schema } } });
const scoped = (scope: ApiScope) => requireScope(scope);

/** Validates a response against its schema, so a field the contract promises can never silently go missing. */
function reply<S extends z.ZodType, Status extends ContentfulStatusCode>(c: Context, schema: S, body: z.input<S>, status: Status) {
  return c.json(schema.parse(body) as z.output<S>, status);
}

const launchedBy = (client: AuthenticatedClient) => `instances API (${client.name})`;

function tagsOf(query: { 'tags[]'?: string | string[] | undefined; tags?: string | string[] | undefined }): string[] {
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return [...list(query['tags[]']), ...list(query.tags)];
}

/** Registers every v1 route on the app. */
export function registerRoutes(app: App, services: RouteServices): void {
  const { definitions, queries, operations, schemas } = services;

  const instanceOf = async (definitionId: number, instanceId: number) => {
    const instance = await queries.findInstance(instanceId);
    // Kuroko2 ignored the definition id of the path; a mismatch is a 404 here so a typo cannot act on another job.
    if (!instance || instance.definitionId !== definitionId) throw new NotFoundError('job instance', instanceId);
    return instance;
  };

  // --- job definitions -------------------------------------------------------------------------------------------

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions',
      summary: 'List job definitions ordered by id; with tags[], those having every tag; limit and after_id page through them',
      operationId: 'listDefinitions',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { query: schemas.definitionListQuery },
      responses: { 200: jsonOf(z.array(definitionSchema), 'the definitions'), ...errors(400) },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const records = await definitions.list(tagsOf(query), {
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
        ...(query.after_id !== undefined ? { afterId: query.after_id } : {}),
      });
      return reply(c, z.array(definitionSchema), records.map(definitionResource), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/definitions',
      summary: 'Create a job definition',
      operationId: 'createDefinition',
      middleware: scoped(API_SCOPE.admin),
      security: secured,
      request: { body: bodyOf(schemas.definitionCreate, true) },
      responses: { 201: jsonOf(definitionSchema, 'the new definition'), ...errors(400, 413, 415, 422) },
    }),
    async (c) => {
      const record = await definitions.create(definitionInput(c.req.valid('json')), `API client ${c.get('client').name}`);
      return reply(c, definitionSchema, definitionResource(record), HTTP_STATUS.created);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions/{id}',
      summary: 'One job definition',
      operationId: 'getDefinition',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { params: definitionParams },
      responses: { 200: jsonOf(definitionSchema, 'the definition'), ...errors(400, 404) },
    }),
    async (c) => reply(c, definitionSchema, definitionResource(await definitions.get(c.req.valid('param').id)), HTTP_STATUS.ok),
  );

  for (const method of ['put', 'patch'] as const) {
    app.openapi(
      createRoute({
        method,
        path: '/v1/definitions/{id}',
        summary: 'Change a job definition; tags, cron and suspend_cron replace their lists when present',
        operationId: method === 'put' ? 'replaceDefinition' : 'updateDefinition',
        middleware: scoped(API_SCOPE.admin),
        security: secured,
        request: { params: definitionParams, body: bodyOf(schemas.definitionWrite, false) },
        responses: { 204: { description: 'changed' }, ...errors(400, 404, 409, 413, 415, 422) },
      }),
      async (c) => {
        await definitions.update(c.req.valid('param').id, definitionInput(c.req.valid('json')), `API client ${c.get('client').name}`);
        return c.body(null, HTTP_STATUS.noContent);
      },
    );
  }

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/definitions/{id}',
      summary: 'Delete a job definition (409 while an instance of it is in progress)',
      operationId: 'deleteDefinition',
      middleware: scoped(API_SCOPE.admin),
      security: secured,
      request: { params: definitionParams },
      responses: { 204: { description: 'deleted' }, ...errors(400, 404, 409) },
    }),
    async (c) => {
      await definitions.delete(c.req.valid('param').id);
      return c.body(null, HTTP_STATUS.noContent);
    },
  );

  // --- job instances ---------------------------------------------------------------------------------------------

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/definitions/{id}/instances',
      summary: 'Launch an instance (the definition must allow API launches; an ad-hoc script needs the admin scope)',
      operationId: 'launchInstance',
      middleware: scoped(API_SCOPE.launch),
      security: secured,
      request: { params: definitionParams, headers: schemas.idempotencyHeader, body: bodyOf(schemas.launch, false) },
      responses: { 201: jsonOf(instanceSchema, 'the instance (canceled when prevent_multi blocked it)'), ...errors(400, 404, 413, 415, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const key = c.req.valid('header')['idempotency-key'];
      const definition = await definitions.get(id);
      if (!definition.apiAllowed) throw new ForbiddenError(`${definition.name} is not allowed to be executed via API`);
      if (body.script !== undefined) await requireAdHocLaunchRights(c.get('client'), body.script, definitions);
      const result = await operations.launch({
        definitionId: id,
        launchedBy: launchedBy(c.get('client')),
        ...(body.env ? { env: body.env } : {}),
        ...(body.script !== undefined ? { script: body.script } : {}),
        ...(key !== undefined ? { idempotencyKey: key } : {}),
      });
      if (result.replayed) c.header('Idempotent-Replayed', 'true');
      else if (!result.blocked) services.onLaunch();
      return reply(c, instanceSchema, instanceResource(result.instance), HTTP_STATUS.created);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions/{id}/instances',
      summary: 'Instances of a definition, newest first',
      operationId: 'listInstances',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { params: definitionParams, query: schemas.instanceListQuery },
      responses: { 200: jsonOf(z.array(instanceSchema), 'the instances'), ...errors(400, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const query = c.req.valid('query');
      await definitions.get(id);
      const instances = await queries.listInstances(id, {
        limit: query.limit ?? DEFAULT_PAGE_SIZE,
        ...(query.status ? { status: query.status } : {}),
        ...(query.before_id !== undefined ? { beforeId: query.before_id } : {}),
      });
      return reply(c, z.array(instanceSchema), instances.map(instanceResource), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions/{id}/instances/{instance_id}',
      summary: 'One instance with its tokens and executions',
      operationId: 'getInstance',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { params: instanceParams },
      responses: { 200: jsonOf(instanceDetailSchema, 'the instance'), ...errors(400, 404) },
    }),
    async (c) => {
      const { id, instance_id } = c.req.valid('param');
      return reply(c, instanceDetailSchema, instanceDetailResource(await queries.getInstanceDetail(id, instance_id)), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/definitions/{id}/instances/{instance_id}',
      summary: 'Cancel an instance, killing its running commands (409 when it already ended)',
      operationId: 'cancelInstance',
      middleware: scoped(API_SCOPE.launch),
      security: secured,
      request: { params: instanceParams },
      responses: { 200: jsonOf(instanceSchema, 'the canceled instance'), ...errors(400, 404, 409) },
    }),
    async (c) => {
      const { id, instance_id } = c.req.valid('param');
      await instanceOf(id, instance_id);
      const instance = await operations.cancel(instance_id, launchedBy(c.get('client')));
      return reply(c, instanceSchema, instanceResource(instance), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions/{id}/instances/{instance_id}/logs',
      summary: 'Log lines of an instance, oldest first; a command\'s output is in the line reporting its result',
      operationId: 'listInstanceLogs',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { params: instanceParams, query: schemas.pageQuery },
      responses: { 200: jsonOf(z.array(logSchema), 'the log lines'), ...errors(400, 404) },
    }),
    async (c) => {
      const { id, instance_id } = c.req.valid('param');
      const { limit, offset } = c.req.valid('query');
      await instanceOf(id, instance_id);
      const logs = await queries.listLogs(instance_id, { limit: limit ?? schemas.maxPageSize, offset: offset ?? 0 });
      return reply(c, z.array(logSchema), logs.map(logResource), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/definitions/{id}/instances/{instance_id}/executions/{execution_id}/output',
      summary: "A command's whole output as streamed by its agent (the log line keeps only its head and tail)",
      operationId: 'getExecutionOutput',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { params: executionParams, query: outputQuery },
      responses: { 200: { description: 'the output, UTF-8 text', content: { 'text/plain': { schema: z.string() } } }, ...errors(400, 404) },
    }),
    async (c) => {
      const { id, instance_id, execution_id } = c.req.valid('param');
      const { offset_bytes, max_bytes } = c.req.valid('query');
      // Without an output store every request is a 404: answer it before reading the database.
      const { outputs } = services;
      if (!outputs) throw new NotFoundError('output store of execution', execution_id);
      await instanceOf(id, instance_id);
      if (!(await queries.executionBelongsTo(instance_id, execution_id))) throw new NotFoundError('execution', execution_id);
      const text = await outputs.read(execution_id, {
        ...(offset_bytes !== undefined ? { offsetBytes: offset_bytes } : {}),
        ...(max_bytes !== undefined ? { maxBytes: max_bytes } : {}),
      });
      return c.text(text, HTTP_STATUS.ok);
    },
  );

  for (const action of ['retry', 'skip'] as const) {
    app.openapi(
      createRoute({
        method: 'post',
        path: `/v1/definitions/{id}/instances/{instance_id}/tokens/{token_id}/${action}`,
        summary: action === 'retry' ? 'Run a failed token\'s node again' : 'Move a failed or waiting token past its node',
        operationId: `${action}Token`,
        middleware: scoped(API_SCOPE.launch),
        security: secured,
        request: { params: tokenParams },
        responses: { 200: jsonOf(instanceSchema, 'the instance'), ...errors(400, 404, 409) },
      }),
      async (c) => {
        const { id, instance_id, token_id } = c.req.valid('param');
        await instanceOf(id, instance_id);
        const by = launchedBy(c.get('client'));
        const instance =
          action === 'retry' ? await operations.retryToken(instance_id, token_id, by) : await operations.skipToken(instance_id, token_id, by);
        services.onLaunch();
        return reply(c, instanceSchema, instanceResource(instance), HTTP_STATUS.ok);
      },
    );
  }

  // --- operations ------------------------------------------------------------------------------------------------

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/stats/instance',
      summary: 'Working and erred instance counts',
      operationId: 'getInstanceStats',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      responses: { 200: jsonOf(countsSchema, '`kuroko2.job_instances.working` and `kuroko2.job_instances.error`'), ...errors() },
    }),
    async (c) => {
      const stats = await queries.instanceStats();
      return reply(c, countsSchema, { 'kuroko2.job_instances.working': stats.working, 'kuroko2.job_instances.error': stats.error }, HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/stats/waiting_execution',
      summary: 'Per known queue: executions nobody claimed three minutes after creation',
      operationId: 'getWaitingExecutionStats',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      responses: { 200: jsonOf(countsSchema, '`kuroko2.executions.waiting.<queue>` for every known queue'), ...errors() },
    }),
    async (c) => {
      const counts = await queries.waitingExecutions(services.declaredQueues);
      const body: Record<string, number> = {};
      for (const [queue, n] of [...counts].sort(([a], [b]) => a.localeCompare(b))) body[`kuroko2.executions.waiting.${queue}`] = n;
      return reply(c, countsSchema, body, HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/workers',
      summary: 'Workers with their status, heartbeat and current executions',
      operationId: 'listWorkers',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      responses: { 200: jsonOf(z.array(workerSchema), 'the workers'), ...errors() },
    }),
    async (c) => reply(c, z.array(workerSchema), (await queries.listWorkers()).map(workerResource), HTTP_STATUS.ok),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/workers/{id}',
      summary: 'Suspend or resume a worker',
      operationId: 'updateWorker',
      middleware: scoped(API_SCOPE.admin),
      security: secured,
      request: { params: workerParams, body: bodyOf(schemas.workerPatch, true) },
      responses: { 200: jsonOf(workerSchema, 'the worker'), ...errors(400, 404, 413, 415, 422) },
    }),
    async (c) => {
      const { suspended } = c.req.valid('json');
      const worker = await queries.setWorkerSuspended(c.req.valid('param').id, suspended);
      return reply(c, workerSchema, workerResource(worker), HTTP_STATUS.ok);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/executions',
      summary: 'Unfinished executions, oldest first',
      operationId: 'listUnfinishedExecutions',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      request: { query: schemas.pageQuery.pick({ limit: true }) },
      responses: { 200: jsonOf(z.array(executionSchema), 'the executions'), ...errors(400) },
    }),
    async (c) => {
      const { limit } = c.req.valid('query');
      const executions = await queries.listUnfinishedExecutions(limit ?? schemas.maxPageSize);
      return reply(c, z.array(executionSchema), executions.map(executionResource), HTTP_STATUS.ok);
    },
  );
}
