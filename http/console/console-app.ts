/**
 * The web console: server-rendered pages and form actions, served by the same Hono application as `/v1`. Every
 * page needs a signed-in person (signed session cookie); every write needs the session's CSRF token and the
 * person's role on what it changes, checked on the server, and goes through the same repositories and services as
 * the API (DefinitionRepository, InstanceOperations, QueryRepository's worker suspend).
 *
 * One sub-app per resource, each a `Hono` mounted at `/`; what they share is in console-context.ts.
 */
import { Hono } from 'hono';
import { ConsoleQueryRepository } from '../../db/repositories/console-query-repository';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { SessionRepository } from '../../db/repositories/session-repository';
import { loadValidationContext } from '../../db/repositories/validation-context-repository';
import { assetRoutes } from './asset-routes';
import { consoleKit, type ConsoleDeps, type ConsoleEnv } from './console-context';
import { consoleErrorHandler } from './console-errors';
import { definitionRoutes } from './definition-routes';
import { instanceRoutes } from './instance-routes';
import { operationsRoutes } from './operations-routes';
import { signInRoutes } from './sign-in-routes';

export type { ConsoleDeps, ConsoleOptions } from './console-context';

/** The console's routes as a Hono app to mount at `/`. */
export function createConsoleApp(deps: ConsoleDeps): Hono<ConsoleEnv> {
  const { services } = deps;
  const now = deps.now ?? Date.now;
  const db = services.handle.db;
  const people = new ConsoleRepository(db, services.ids, services.clock);
  const reads = new ConsoleQueryRepository(db, services.clock, deps.definitions);
  // The console's own clock (tests move it), so a session row and its cookie expire together.
  const sessions = new SessionRepository(db, { now: () => new Date(now()) });
  const validationContext = () => loadValidationContext(db, services.clock, deps.declaredQueues, services.customTasks);

  const kit = consoleKit({ ...deps, now }, { people, reads, sessions, validationContext });
  const app = new Hono<ConsoleEnv>();
  // Set before the sub-apps are mounted; routes that throw end here (the sub-apps have no handler of their own).
  app.onError(consoleErrorHandler(kit));
  app.route('/', assetRoutes());
  app.route('/', signInRoutes(kit));
  app.route('/', definitionRoutes(kit));
  app.route('/', instanceRoutes(kit));
  app.route('/', operationsRoutes(kit));
  return app;
}
