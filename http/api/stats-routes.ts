/** `/v1/stats`: the counts Kuroko2's monitoring read (working and erred instances, unclaimed executions per queue). */
import { createRoute } from '@hono/zod-openapi';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import { HTTP_STATUS } from '../http-errors';
import { countsSchema } from './http-schemas';
import { errors, jsonOf, reply, scoped, secured, type App, type RouteServices } from './route-kit';

/** Registers the stats routes on `routes` (mounted under `/v1`) and returns it. */
export function statsRoutes(routes: App, { queries, declaredQueues }: RouteServices): App {
  routes.openapi(
    createRoute({
      method: 'get',
      path: '/stats/instance',
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

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/stats/waiting_execution',
      summary: 'Per known queue: executions nobody claimed three minutes after creation',
      operationId: 'getWaitingExecutionStats',
      middleware: scoped(API_SCOPE.read),
      security: secured,
      responses: { 200: jsonOf(countsSchema, '`kuroko2.executions.waiting.<queue>` for every known queue'), ...errors() },
    }),
    async (c) => {
      const counts = await queries.waitingExecutions(declaredQueues);
      const body: Record<string, number> = {};
      for (const [queue, n] of [...counts].sort(([a], [b]) => a.localeCompare(b))) body[`kuroko2.executions.waiting.${queue}`] = n;
      return reply(c, countsSchema, body, HTTP_STATUS.ok);
    },
  );
  return routes;
}
