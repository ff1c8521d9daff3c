/**
 * The v1 routes, one sub-app per resource, each mounted under `/v1`. A route is one `createRoute` (its scope,
 * request and response schemas) and a thin handler that parses, calls one service and maps the result; responses
 * are checked against their schema before they leave (route-kit.ts). The API clients' routes are in
 * api-client-routes.ts.
 */
import { definitionRoutes } from './definition-routes';
import { executionRoutes } from './execution-routes';
import { instanceRoutes } from './instance-routes';
import { statsRoutes } from './stats-routes';
import { workerRoutes } from './worker-routes';
import { subAppOf, type App, type RouteServices } from './route-kit';

export { SECURITY_SCHEME, errors } from './route-kit';
export type { App, AppEnv, RouteServices } from './route-kit';

/** Mounts every v1 resource's routes on the app (the order is the OpenAPI document's). */
export function registerRoutes(app: App, services: RouteServices): void {
  for (const resourceRoutes of [definitionRoutes, instanceRoutes, executionRoutes, statsRoutes, workerRoutes]) {
    app.route('/v1', resourceRoutes(subAppOf(app), services));
  }
}
