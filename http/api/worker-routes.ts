/** `/v1/workers`: list the workers, suspend or resume one. */
import { createRoute, z } from '@hono/zod-openapi';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import { HTTP_STATUS } from '../http-errors';
import { workerResource } from './http-resources';
import { workerParams, workerSchema } from './http-schemas';
import { bodyOf, errors, jsonOf, reply, scoped, secured, type App, type RouteServices } from './route-kit';

/** Registers the worker routes on `routes` (mounted under `/v1`) and returns it. */
export function workerRoutes(routes: App, { queries, schemas }: RouteServices): App {
  routes.openapi(
    createRoute({
      method: 'get',
      path: '/workers',
      summary: 'Workers with their status, heartbeat and current executions',
      operationId: 'listWorkers',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      responses: { 200: jsonOf(z.array(workerSchema), 'the workers'), ...errors() },
    }),
    async (c) => reply(c, z.array(workerSchema), (await queries.listWorkers()).map(workerResource), HTTP_STATUS.ok),
  );

  routes.openapi(
    createRoute({
      method: 'patch',
      path: '/workers/{id}',
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
  return routes;
}
