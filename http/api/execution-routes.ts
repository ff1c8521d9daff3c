/** Executions: a command's whole output (`.../executions/{execution_id}/output`) and `/v1/executions`, the unfinished ones. */
import { createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors';
import { API_SCOPE } from '../../db/repositories/api-client-repository';
import { HTTP_STATUS } from '../http-errors';
import { executionResource } from './http-resources';
import { executionParams, executionSchema } from './http-schemas';
import { errors, instanceOf, jsonOf, reply, scoped, secured, type App, type RouteServices } from './route-kit';

/** Largest window of output one request returns. */
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
const outputQuery = z.object({
  offset_bytes: z.coerce.number().int().min(0).optional(),
  max_bytes: z.coerce.number().int().min(1).max(MAX_OUTPUT_BYTES).optional(),
});

/** Registers the execution routes on `routes` (mounted under `/v1`) and returns it. */
export function executionRoutes(routes: App, { queries, schemas, outputs }: RouteServices): App {
  routes.openapi(
    createRoute({
      method: 'get',
      path: '/definitions/{id}/instances/{instance_id}/executions/{execution_id}/output',
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
      if (!outputs) throw new NotFoundError('output store of execution', execution_id);
      await instanceOf(queries, id, instance_id);
      if (!(await queries.executionBelongsTo(instance_id, execution_id))) throw new NotFoundError('execution', execution_id);
      const text = await outputs.read(execution_id, {
        ...(offset_bytes !== undefined ? { offsetBytes: offset_bytes } : {}),
        ...(max_bytes !== undefined ? { maxBytes: max_bytes } : {}),
      });
      return c.text(text, HTTP_STATUS.ok);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/executions',
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
  return routes;
}
