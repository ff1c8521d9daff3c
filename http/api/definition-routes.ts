/** `/v1/definitions`: list, create, read, change and delete job definitions. */
import { createRoute, z } from '@hono/zod-openapi';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import { HTTP_STATUS } from '../http-errors';
import { definitionInput, definitionResource } from './http-resources';
import { definitionParams, definitionSchema } from './http-schemas';
import { bodyOf, errors, jsonOf, reply, scoped, secured, type App, type RouteServices } from './route-kit';

function tagsOf(query: { 'tags[]'?: string | string[] | undefined; tags?: string | string[] | undefined }): string[] {
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return [...list(query['tags[]']), ...list(query.tags)];
}

/** Registers the definition routes on `routes` (mounted under `/v1`) and returns it. */
export function definitionRoutes(routes: App, { definitions, schemas }: RouteServices): App {
  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions',
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

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/definitions',
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

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions/{id}',
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
    routes.openapi(
      createRoute({
        method,
        path: '/definitions/{id}',
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

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/definitions/{id}',
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
  return routes;
}
