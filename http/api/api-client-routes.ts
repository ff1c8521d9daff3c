/**
 * `/v1/api_clients`, admin scope only: list the clients (never their hashes), revoke one, or rotate its secret (the
 * new secret is in the response, once; the old one stops working at once, in every process, because the stored
 * hash it was verified against is gone).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors';
import { API_CLIENT_NAME_PATTERN, API_SCOPE } from '../../db/repositories/api-client-repository';
import type { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { generateSecret, hashSecret, requireScope } from './http-auth';
import { HTTP_STATUS } from '../http-errors';
import { JSON_TYPE, errors, secured, subAppOf, type App } from './route-kit';

const apiClientSchema = z
  .object({ name: z.string(), scope: z.enum(['read', 'launch', 'admin']), created_at: z.string().openapi({ format: 'date-time' }) })
  .openapi('ApiClient');
const rotatedSchema = z
  .object({ name: z.string(), scope: z.enum(['read', 'launch', 'admin']), secret: z.string().openapi({ description: 'the new secret, shown only in this response' }) })
  .openapi('ApiClientSecret');
const nameParams = z.object({
  name: z.string().regex(API_CLIENT_NAME_PATTERN, 'must be an API client name').openapi({ param: { name: 'name', in: 'path' }, example: 'deploy-bot' }),
});

const scopeOf = (scope: string) => (scope === API_SCOPE.admin || scope === API_SCOPE.launch ? scope : API_SCOPE.read);

/** Mounts the API client routes on the app, under `/v1`. */
export function registerApiClientRoutes(app: App, clients: ApiClientRepository): void {
  app.route('/v1', apiClientRoutes(subAppOf(app), clients));
}

/** Registers the API client routes on `routes` (mounted under `/v1`) and returns it. */
export function apiClientRoutes(routes: App, clients: ApiClientRepository): App {
  routes.openapi(
    createRoute({
      method: 'get',
      path: '/api_clients',
      operationId: 'listApiClients',
      summary: 'API clients with their scope (admin scope)',
      middleware: requireScope(API_SCOPE.admin),
      security: secured,
      responses: { 200: { description: 'the clients, by name', content: { [JSON_TYPE]: { schema: z.array(apiClientSchema) } } }, ...errors() },
    }),
    async (c) => {
      const rows = await clients.listSummaries();
      const body = rows.map((r) => apiClientSchema.parse({ name: r.name, scope: scopeOf(r.scope), created_at: r.createdAt.toISOString() }));
      return c.json(body, HTTP_STATUS.ok);
    },
  );

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/api_clients/{name}',
      operationId: 'revokeApiClient',
      summary: 'Revoke an API client: its credentials stop working at once (admin scope)',
      middleware: requireScope(API_SCOPE.admin),
      security: secured,
      request: { params: nameParams },
      responses: { 204: { description: 'revoked' }, ...errors(400, 404) },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      if (!(await clients.delete(name))) throw new NotFoundError('API client', name);
      return c.body(null, HTTP_STATUS.noContent);
    },
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/api_clients/{name}/rotate',
      operationId: 'rotateApiClient',
      summary: 'Give an API client a new random secret, returned once; the old one stops working at once (admin scope)',
      middleware: requireScope(API_SCOPE.admin),
      security: secured,
      request: { params: nameParams },
      responses: { 200: { description: 'the new secret', content: { [JSON_TYPE]: { schema: rotatedSchema } } }, ...errors(400, 404) },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const existing = await clients.findByName(name);
      if (!existing) throw new NotFoundError('API client', name);
      const secret = generateSecret();
      if (!(await clients.replaceSecret(name, await hashSecret(secret)))) throw new NotFoundError('API client', name);
      c.header('cache-control', 'no-store');
      return c.json(rotatedSchema.parse({ name, scope: existing.scope, secret }), HTTP_STATUS.ok);
    },
  );
  return routes;
}
