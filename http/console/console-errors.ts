/**
 * The console's error mapping: a domain error becomes an error page (or JSON for the script check and the live
 * view) with its status; anything else is logged and shown as a 500 that says nothing about its cause.
 */
import type { ErrorHandler } from 'hono';
import { ConflictError, ForbiddenError, NotFoundError } from '../../core/errors';
import { BadRequest, STATUS, withSecurityHeaders, type ConsoleEnv, type ConsoleKit } from './console-context';
import { errorPage } from './operations-pages';

type ErrorStatus = 400 | 403 | 404 | 409 | 500;

/** Status, title and message shown for an error; undefined for one that is not the person's doing. */
function describeConsoleError(error: unknown): [ErrorStatus, string, string] | undefined {
  if (error instanceof BadRequest) return [STATUS.badRequest, 'Bad request', error.message];
  if (error instanceof ForbiddenError) return [STATUS.forbidden, 'Not allowed', error.message];
  if (error instanceof NotFoundError) return [STATUS.notFound, 'Not found', error.message];
  if (error instanceof ConflictError) return [STATUS.conflict, 'Not possible right now', error.message];
  return undefined;
}

/** The console app's `onError`. */
export function consoleErrorHandler(kit: ConsoleKit): ErrorHandler<ConsoleEnv> {
  return async (error, c) => {
    const who = await kit.currentUser(c).catch(() => undefined);
    const known = describeConsoleError(error);
    if (!known) {
      const detail = error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error);
      kit.logger.error('console request failed', { path: c.req.path, error: detail });
    }
    const [status, title, message] = known ?? [500, 'Something went wrong', 'The console could not handle this request. It was logged; try again in a moment.'];
    if (kit.wantsJson(c)) return withSecurityHeaders(c.json({ message }, status));
    return withSecurityHeaders(c.html(errorPage(kit.pageCtx(c, who?.user), title, message).toString(), status));
  };
}
