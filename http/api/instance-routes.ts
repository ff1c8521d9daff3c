/**
 * `/v1/definitions/{id}/instances`: launch, list, read and cancel a definition's instances, read their log lines,
 * and retry or skip one of their tokens.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { ForbiddenError } from '../../core/errors';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import { requireAdHocLaunchRights } from '../launch-policy';
import { HTTP_STATUS } from '../http-errors';
import { instanceDetailResource, instanceResource, logResource } from './http-resources';
import { definitionParams, instanceDetailSchema, instanceParams, instanceSchema, logSchema, tokenParams, DEFAULT_PAGE_SIZE } from './http-schemas';
import { bodyOf, errors, instanceOf, jsonOf, launchedBy, reply, scoped, secured, type App, type RouteServices } from './route-kit';

/** Registers the instance, log and token routes on `routes` (mounted under `/v1`) and returns it. */
export function instanceRoutes(routes: App, services: RouteServices): App {
  const { definitions, queries, operations, schemas } = services;

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/definitions/{id}/instances',
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

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions/{id}/instances',
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

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions/{id}/instances/{instance_id}',
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

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/definitions/{id}/instances/{instance_id}',
      summary: 'Cancel an instance, killing its running commands (409 when it already ended)',
      operationId: 'cancelInstance',
      middleware: scoped(API_SCOPE.launch),
      security: secured,
      request: { params: instanceParams },
      responses: { 200: jsonOf(instanceSchema, 'the canceled instance'), ...errors(400, 404, 409) },
    }),
    async (c) => {
      const { id, instance_id } = c.req.valid('param');
      await instanceOf(queries, id, instance_id);
      const instance = await operations.cancel(instance_id, launchedBy(c.get('client')));
      return reply(c, instanceSchema, instanceResource(instance), HTTP_STATUS.ok);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions/{id}/instances/{instance_id}/logs',
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
      await instanceOf(queries, id, instance_id);
      const logs = await queries.listLogs(instance_id, { limit: limit ?? schemas.maxPageSize, offset: offset ?? 0 });
      return reply(c, z.array(logSchema), logs.map(logResource), HTTP_STATUS.ok);
    },
  );

  for (const action of ['retry', 'skip'] as const) {
    routes.openapi(
      createRoute({
        method: 'post',
        path: `/definitions/{id}/instances/{instance_id}/tokens/{token_id}/${action}`,
        summary: action === 'retry' ? 'Run a failed token\'s node again' : 'Move a failed or waiting token past its node',
        operationId: `${action}Token`,
        middleware: scoped(API_SCOPE.launch),
        security: secured,
        request: { params: tokenParams },
        responses: { 200: jsonOf(instanceSchema, 'the instance'), ...errors(400, 404, 409) },
      }),
      async (c) => {
        const { id, instance_id, token_id } = c.req.valid('param');
        await instanceOf(queries, id, instance_id);
        const by = launchedBy(c.get('client'));
        const instance =
          action === 'retry' ? await operations.retryToken(instance_id, token_id, by) : await operations.skipToken(instance_id, token_id, by);
        services.onLaunch();
        return reply(c, instanceSchema, instanceResource(instance), HTTP_STATUS.ok);
      },
    );
  }
  return routes;
}
