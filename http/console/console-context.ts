/**
 * What every console sub-app shares: the request context's type, the stores and services it reads, and the
 * helpers that wrap a handler. Middleware is attached per route (`page`, `action`), never with `use('*')`: the
 * console is mounted at `/` next to `/v1`, and a catch-all would wrap the API's routes too.
 */
import type { Context } from 'hono';
import type { ValidationContext } from '../../core/dsl/script-validator';
import type { ConsoleQueryRepository } from '../../db/repositories/console-query-repository';
import type { ConsoleRepository } from '../../db/repositories/console-repository';
import type { DefinitionRepository } from '../../db/repositories/definition-repository';
import type { QueryRepository } from '../../db/repositories/query-repository';
import type { SessionRepository } from '../../db/repositories/session-repository';
import type { EngineServices } from '../../app/engine-services';
import type { HttpLogger } from '../http-errors';
import { DEFAULT_HTTP_LIMITS, buildSchemas } from '../api/http-schemas';
import { ConsoleAccess, type ConsoleUser } from './console-access';
import { LOCAL_USER, type ConsoleConfig } from './console-config';
import { field, type FormBody } from './console-forms';
import { csrfMatches, decodeSession, isHttps, readCookie, SESSION_COOKIE, setFlash, takeFlash, type ConsoleSession, type Flash } from './console-session';
import type { PageContext } from './console-layout';
import type { Html } from './html';
import type { LocalSignIn } from './local-sign-in';
import { errorPage } from './operations-pages';

export type ConsoleEnv = { Variables: { user: ConsoleUser; session: ConsoleSession } };
export type Ctx = Context<ConsoleEnv>;

export const STATUS = { ok: 200, seeOther: 303, badRequest: 400, unauthorized: 401, forbidden: 403, notFound: 404, conflict: 409, unprocessable: 422 } as const;
export type PageStatus = 200 | 400 | 401 | 403 | 404 | 409 | 422;
/** A route parameter that is an id: at most 16 digits, no leading zero. */
export const ID = '{[1-9][0-9]{0,15}}';
export const LIST_LIMITS = { dashboard: 50, instances: 20, stats: 30, working: 500, executions: 500, revisions: 50, timeline: 2000, canceledWindowMs: 86_400_000 } as const;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

export function withSecurityHeaders(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!response.headers.has(name)) response.headers.set(name, value);
  return response;
}

/** A malformed request to the console (a bad id or count): 400. */
export class BadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** Ids past 2^53 - 1 match the route pattern but would be rounded to another record's id: refused with 400. */
export function idParam(c: Ctx, name: string): number {
  const id = Number(c.req.param(name));
  if (!Number.isSafeInteger(id)) throw new BadRequest(`${name} must be an id of at most ${Number.MAX_SAFE_INTEGER}`);
  return id;
}

export interface ConsoleOptions {
  config: ConsoleConfig;
  /** The issuer of one-time links; required when `config.localSignIn` is set. */
  localSignIn?: LocalSignIn;
}

export interface ConsoleDeps extends ConsoleOptions {
  services: EngineServices;
  definitions: DefinitionRepository;
  queries: QueryRepository;
  declaredQueues: readonly string[];
  onLaunch: () => void;
  logger: HttpLogger;
  now?: () => number;
}

/** The console's own stores, built by the composition function. */
export interface ConsoleStores {
  people: ConsoleRepository;
  reads: ConsoleQueryRepository;
  sessions: SessionRepository;
  validationContext: () => Promise<ValidationContext>;
}

type Handler = (c: Ctx, user: ConsoleUser) => Promise<Response>;
type Action = (c: Ctx, user: ConsoleUser, body: FormBody) => Promise<Response>;

/** The helpers of the console's sub-apps over one set of dependencies. */
export function consoleKit(deps: ConsoleDeps, stores: ConsoleStores) {
  const { config, logger } = deps;
  const now = deps.now ?? Date.now;
  const admins = config.localSignIn ? [...config.admins, LOCAL_USER.email] : config.admins;
  const access = new ConsoleAccess(stores.people, admins);

  const secure = (c: Ctx) => isHttps(c, config.baseUrl);
  const render = (c: Ctx, page: Html, status: PageStatus = STATUS.ok) => withSecurityHeaders(c.html(page.toString(), status));
  const flash = (c: Ctx) => takeFlash(c, config.secret, now(), secure(c));
  const pageCtx = (c: Ctx, user: ConsoleUser | undefined, shown?: Flash): PageContext => ({ user, flash: shown, path: c.req.path });
  /** The page context of a signed-in person, with the flash message when `withFlash`. */
  const userCtx = (c: Ctx, user: ConsoleUser, withFlash = false) => ({ ...pageCtx(c, user, withFlash ? flash(c) : undefined), user });
  const redirect = (c: Ctx, to: string) => withSecurityHeaders(c.redirect(to, STATUS.seeOther));
  const flashRedirect = (c: Ctx, to: string, message: Flash) => {
    setFlash(c, config.secret, message, now(), secure(c));
    return redirect(c, to);
  };
  const wantsJson = (c: Ctx) => c.req.path === '/console/validate' || c.req.path.endsWith('/live') || (c.req.header('accept') ?? '').startsWith('application/json');

  const currentUser = async (c: Ctx): Promise<{ user: ConsoleUser; session: ConsoleSession } | undefined> => {
    const session = decodeSession(config.secret, readCookie(c, SESSION_COOKIE), now());
    // A well-signed cookie is not enough: its session must not have been ended by a sign-out.
    if (!session || !(await stores.sessions.isActive(session.sid, session.email))) return undefined;
    const globalAdmin = session.verified && access.isGlobalAdmin(session.email);
    return { session, user: { email: session.email, name: session.name, csrf: session.csrf, globalAdmin, verified: session.verified } };
  };

  const signInRedirect = (c: Ctx) => {
    if (wantsJson(c)) return withSecurityHeaders(c.json({ message: 'sign in first' }, STATUS.unauthorized));
    const back = c.req.method === 'GET' ? c.req.path + (new URL(c.req.url).search || '') : '/';
    return redirect(c, `/sign_in?return_to=${encodeURIComponent(back)}`);
  };

  /** A page for a signed-in person. */
  const page = (handler: Handler) => async (c: Ctx) => {
    const who = await currentUser(c);
    if (!who) return signInRedirect(c);
    c.set('user', who.user);
    c.set('session', who.session);
    return withSecurityHeaders(await handler(c, who.user));
  };

  /** A write by a signed-in person carrying the session's CSRF token (form field `_csrf` or `X-CSRF-Token`). */
  const action = (handler: Action) => async (c: Ctx) => {
    const who = await currentUser(c);
    if (!who) return signInRedirect(c);
    c.set('user', who.user);
    c.set('session', who.session);
    const isJson = (c.req.header('content-type') ?? '').startsWith('application/json');
    const body: FormBody = isJson ? {} : await c.req.parseBody({ all: true });
    const token = c.req.header('x-csrf-token') ?? field(body, '_csrf');
    if (!csrfMatches(who.session, token)) {
      logger.warn('console request refused: missing or wrong CSRF token', { path: c.req.path, user: who.user.email });
      if (wantsJson(c)) return withSecurityHeaders(c.json({ message: 'missing or wrong CSRF token; reload the page' }, STATUS.forbidden));
      return render(c, errorPage(pageCtx(c, who.user), 'The form has expired', 'This form is from an older session or another site. Reload the page and try again.'), STATUS.forbidden);
    }
    return withSecurityHeaders(await handler(c, who.user, body));
  };

  return {
    ...deps,
    ...stores,
    now,
    access,
    schemas: buildSchemas(DEFAULT_HTTP_LIMITS),
    secure,
    render,
    flash,
    pageCtx,
    userCtx,
    redirect,
    flashRedirect,
    wantsJson,
    currentUser,
    page,
    action,
  };
}

export type ConsoleKit = ReturnType<typeof consoleKit>;
