/**
 * The web console: server-rendered pages and form actions, served by the same Hono application as `/v1`. Every
 * page needs a signed-in person (signed session cookie); every write needs the session's CSRF token and the
 * person's role on what it changes, checked here on the server, and goes through the same repositories and
 * services as the API (DefinitionRepository, InstanceOperations, QueryRepository's worker suspend).
 *
 * Middleware is attached per route (`page`, `action`), never with `use('*')`: the console is mounted at `/` next
 * to `/v1`, and a catch-all would wrap the API's routes too.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { validateScript } from '../../core/dsl/script-validator';
import { parseScriptRecovering } from '../../core/dsl/script-parser';
import { subProcessTargets } from '../../core/dsl/token-budget';
import { ConflictError, ForbiddenError, NotFoundError, ScriptError, ValidationError, type FieldProblem, type ScriptProblem, describeError } from '../../core/errors';
import { PREVENT_MULTI, instanceStatus, INSTANCE_STATUS } from '../../core/model';
import { normalizeEmail } from '../../core/sign-in-rules';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import { SessionRepository } from '../../db/repositories/session-repository';
import { DEFINITION_DEFAULTS, type AlsoWrite, type DefinitionRecord, type DefinitionRepository } from '../../db/repositories/definition-repository';
import type { QueryRepository } from '../../db/repositories/query-repository';
import { loadValidationContext } from '../../db/repositories/validation-context-repository';
import type { EngineServices } from '../../app/engine-services';
import type { HttpLogger } from '../http-errors';
import { definitionInput, splitTextTags } from '../api/http-resources';
import { DEFAULT_HTTP_LIMITS, buildSchemas } from '../api/http-schemas';
import { ConsoleAccess, type ConsoleUser } from './console-access';
import { CONSOLE_ASSETS } from './console-assets';
import { LOCAL_USER, type ConsoleConfig } from './console-config';
import { errorPage, executionsPage, signInPage, timelinePage, TIMELINE_PERIODS, workersPage, workingPage, type TimelinePeriod } from './operations-pages';
import {
  clearCookie,
  csrfMatches,
  decodeSession,
  encodeSession,
  isHttps,
  newSession,
  readCookie,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  setFlash,
  setSignedCookie,
  signValue,
  SIGN_IN_STATE_COOKIE,
  SIGN_IN_STATE_TTL_MS,
  takeFlash,
  verifyValue,
  COOKIE_PURPOSE,
  type ConsoleSession,
  type Flash,
} from './console-session';
import {
  dashboardPage,
  definitionFormPage,
  definitionListPage,
  definitionPage,
  revisionsPage,
  type DefinitionFormValues,
  type DefinitionRow,
  type FieldErrors,
} from './definition-pages';
import type { Html } from './html';
import { executionsFragment, FRAGMENT_IDS, instancePage, logLine, summaryFragment, tokensFragment, type InstanceView } from './instance-page';
import { LOCAL_SIGN_IN_PATH, type LocalSignIn } from './local-sign-in';
import { OIDC_CALLBACK_PATH, OIDC_START_PATH, OidcSignIn, SignInRefusedError } from './oidc-sign-in';
import { referencedIds } from './script-view';

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

type ConsoleEnv = { Variables: { user: ConsoleUser; session: ConsoleSession } };
type Ctx = Context<ConsoleEnv>;
type FormBody = Record<string, string | File | (string | File)[]>;

const STATUS = { ok: 200, seeOther: 303, badRequest: 400, unauthorized: 401, forbidden: 403, notFound: 404, conflict: 409, unprocessable: 422 } as const;
const ID = '{[1-9][0-9]{0,15}}';
const LIST_LIMITS = { dashboard: 50, instances: 20, stats: 30, working: 500, executions: 500, revisions: 50, timeline: 2000, canceledWindowMs: 86_400_000 } as const;
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};
const ASSET_MAX_AGE_SECONDS = 31_536_000;

/** Any origin will do: only whether the path stays on it matters. */
const RETURN_TO_PROBE_ORIGIN = 'https://kuroko.invalid';

const CONTROL_MAX = 0x1f;
const DELETE = 0x7f;

/** Tabs, newlines and other controls vanish in a browser's URL parser; `\` becomes `/`. */
function hasControlOrBackslash(value: string): boolean {
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code <= CONTROL_MAX || code === DELETE || char === '\\') return true;
  }
  return false;
}

/** The path `value` resolves to on our origin, or undefined when a browser would leave it (WHATWG URL rules). */
function resolveOnOrigin(value: string): string | undefined {
  if (!value.startsWith('/') || hasControlOrBackslash(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value, RETURN_TO_PROBE_ORIGIN);
  } catch {
    return undefined;
  }
  const path = `${url.pathname}${url.search}${url.hash}`;
  // A path that still starts with `//` after resolving (`/.//evil.com`) is read as a host by the next parser.
  if (url.origin !== RETURN_TO_PROBE_ORIGIN || !path.startsWith('/') || path.startsWith('//')) return undefined;
  return path;
}

/**
 * A path on this site, or `/`: never another origin. The value is resolved the way a browser resolves a Location
 * header (WHATWG URL: tabs and newlines dropped, `\` read as `/`), so `/\t/evil.com`, `/\\evil.com` and `//evil.com`
 * are refused; so is a value that does so once percent-decoded (`/%09/evil.com`), since a proxy or a second hop may
 * decode it. What is returned is the resolved path, never the raw value.
 */
export function safeReturnTo(value: string | undefined): string {
  if (!value) return '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return '/';
  }
  if (resolveOnOrigin(decoded) === undefined) return '/';
  return resolveOnOrigin(value) ?? '/';
}

/** A malformed request to the console (a bad id or count): 400. */
class BadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

function field(body: FormBody, name: string): string {
  const value = body[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : '';
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** KEY=value lines as an object; a line without `=` is reported, not dropped. */
export function parseEnvLines(text: string): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) problems.push(`environment line ${index + 1}: expected KEY=value`);
    else env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { env, problems };
}

function withSecurityHeaders(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!response.headers.has(name)) response.headers.set(name, value);
  return response;
}

/** The console's routes as a Hono app to mount at `/`. */
export function createConsoleApp(deps: ConsoleDeps): Hono<ConsoleEnv> {
  const { config, services, definitions, queries } = deps;
  const now = deps.now ?? Date.now;
  const db = services.handle.db;
  const people = new ConsoleRepository(db, services.ids, services.clock);
  // The console's own clock (tests move it), so a session row and its cookie expire together.
  const sessions = new SessionRepository(db, { now: () => new Date(now()) });
  const admins = config.localSignIn ? [...config.admins, LOCAL_USER.email] : config.admins;
  const access = new ConsoleAccess(people, admins);
  const oidc = config.oidc ? new OidcSignIn(config.oidc) : undefined;
  const schemas = buildSchemas(DEFAULT_HTTP_LIMITS);
  const validationContext = () => loadValidationContext(db, services.clock, deps.declaredQueues, services.customTasks);
  const app = new Hono<ConsoleEnv>();

  const secure = (c: Ctx) => isHttps(c, config.baseUrl);
  const render = (c: Ctx, page: Html, status: 200 | 400 | 401 | 403 | 404 | 409 | 422 = STATUS.ok) => withSecurityHeaders(c.html(page.value, status));
  const pageCtx = (c: Ctx, user: ConsoleUser | undefined, flash?: Flash) => ({ user, flash, path: c.req.path });
  const redirect = (c: Ctx, to: string) => withSecurityHeaders(c.redirect(to, STATUS.seeOther));
  const flashRedirect = (c: Ctx, to: string, flash: Flash) => {
    setFlash(c, config.secret, flash, now(), secure(c));
    return redirect(c, to);
  };
  const wantsJson = (c: Ctx) => c.req.path === '/console/validate' || c.req.path.endsWith('/live') || (c.req.header('accept') ?? '').startsWith('application/json');

  const currentUser = async (c: Ctx): Promise<{ user: ConsoleUser; session: ConsoleSession } | undefined> => {
    const session = decodeSession(config.secret, readCookie(c, SESSION_COOKIE), now());
    // A well-signed cookie is not enough: its session must not have been ended by a sign-out.
    if (!session || !(await sessions.isActive(session.sid, session.email))) return undefined;
    const globalAdmin = session.verified && access.isGlobalAdmin(session.email);
    return { session, user: { email: session.email, name: session.name, csrf: session.csrf, globalAdmin, verified: session.verified } };
  };

  const signInRedirect = (c: Ctx) => {
    if (wantsJson(c)) return withSecurityHeaders(c.json({ message: 'sign in first' }, STATUS.unauthorized));
    const back = c.req.method === 'GET' ? c.req.path + (new URL(c.req.url).search || '') : '/';
    return redirect(c, `/sign_in?return_to=${encodeURIComponent(back)}`);
  };

  /** A page for a signed-in person. */
  const page = (handler: (c: Ctx, user: ConsoleUser) => Promise<Response>) => async (c: Ctx) => {
    const who = await currentUser(c);
    if (!who) return signInRedirect(c);
    c.set('user', who.user);
    c.set('session', who.session);
    return withSecurityHeaders(await handler(c, who.user));
  };

  /** A write by a signed-in person carrying the session's CSRF token (form field `_csrf` or `X-CSRF-Token`). */
  const action = (handler: (c: Ctx, user: ConsoleUser, body: FormBody) => Promise<Response>) => async (c: Ctx) => {
    const who = await currentUser(c);
    if (!who) return signInRedirect(c);
    c.set('user', who.user);
    c.set('session', who.session);
    const isJson = (c.req.header('content-type') ?? '').startsWith('application/json');
    const body: FormBody = isJson ? {} : await c.req.parseBody({ all: true });
    const token = c.req.header('x-csrf-token') ?? field(body, '_csrf');
    if (!csrfMatches(who.session, token)) {
      deps.logger.warn('console request refused: missing or wrong CSRF token', { path: c.req.path, user: who.user.email });
      if (wantsJson(c)) return withSecurityHeaders(c.json({ message: 'missing or wrong CSRF token; reload the page' }, STATUS.forbidden));
      return render(c, errorPage(pageCtx(c, who.user), 'The form has expired', 'This form is from an older session or another site. Reload the page and try again.'), STATUS.forbidden);
    }
    return withSecurityHeaders(await handler(c, who.user, body));
  };

  /** Ids past 2^53 - 1 match the route pattern but would be rounded to another record's id: refused with 400. */
  const idParam = (c: Ctx, name: string): number => {
    const id = Number(c.req.param(name));
    if (!Number.isSafeInteger(id)) throw new BadRequest(`${name} must be an id of at most ${Number.MAX_SAFE_INTEGER}`);
    return id;
  };

  app.onError(async (error, c) => {
    const who = await currentUser(c as Ctx).catch(() => undefined);
    const ctx = pageCtx(c as Ctx, who?.user);
    let status: 400 | 403 | 404 | 409 | 500 = 500;
    let title = 'Something went wrong';
    let message = 'The console could not handle this request. It was logged; try again in a moment.';
    if (error instanceof BadRequest) [status, title, message] = [STATUS.badRequest, 'Bad request', error.message];
    else if (error instanceof ForbiddenError) [status, title, message] = [STATUS.forbidden, 'Not allowed', error.message];
    else if (error instanceof NotFoundError) [status, title, message] = [STATUS.notFound, 'Not found', error.message];
    else if (error instanceof ConflictError) [status, title, message] = [STATUS.conflict, 'Not possible right now', error.message];
    else deps.logger.error('console request failed', { path: c.req.path, error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error) });
    if (wantsJson(c as Ctx)) return withSecurityHeaders(c.json({ message }, status));
    return withSecurityHeaders(c.html(errorPage(ctx, title, message).value, status));
  });

  // --- assets and sign-in ----------------------------------------------------------------------------------------

  for (const [name, asset] of Object.entries(CONSOLE_ASSETS)) {
    app.get(`/console/assets/console.${name}`, (c) =>
      c.body(asset.body, STATUS.ok, { 'content-type': asset.type, 'cache-control': `public, max-age=${ASSET_MAX_AGE_SECONDS}, immutable`, 'x-content-type-options': 'nosniff' }),
    );
  }

  const oidcLabel = oidc && config.oidc ? new URL(config.oidc.issuer).hostname : undefined;
  app.get('/sign_in', async (c) => {
    if (await currentUser(c)) return redirect(c, safeReturnTo(c.req.query('return_to')));
    return render(c, signInPage(pageCtx(c, undefined, takeFlash(c, config.secret, now(), secure(c))), { oidcLabel, localSignIn: config.localSignIn, returnTo: safeReturnTo(c.req.query('return_to')) }));
  });

  const startSession = async (c: Ctx, email: string, name: string, to: string, verified = true) => {
    await people.recordSignIn(email, name);
    const session = newSession(normalizeEmail(email), name, now(), verified);
    await sessions.create(session.sid, session.email, new Date(session.expiresAt));
    setSignedCookie(c, SESSION_COOKIE, encodeSession(config.secret, session), SESSION_TTL_MS, secure(c));
    return redirect(c, safeReturnTo(to));
  };

  app.get(LOCAL_SIGN_IN_PATH, async (c) => {
    if (!config.localSignIn || !deps.localSignIn?.redeem(c.req.query('token'))) {
      deps.logger.warn('console sign-in refused: unknown, used or expired one-time link', {});
      return render(
        c,
        signInPage(pageCtx(c, undefined), { oidcLabel, localSignIn: config.localSignIn, returnTo: '/', message: 'This sign-in link is unknown, was already used, or has expired. Restart kuroko dev for a new one.' }),
        STATUS.forbidden,
      );
    }
    return startSession(c, LOCAL_USER.email, LOCAL_USER.name, '/');
  });

  const redirectUri = (c: Ctx) => `${config.baseUrl ?? new URL(c.req.url).origin}${OIDC_CALLBACK_PATH}`;
  app.get(OIDC_START_PATH, async (c) => {
    if (!oidc) return render(c, errorPage(pageCtx(c, undefined), 'Not found', 'OpenID Connect sign-in is not configured.'), STATUS.notFound);
    const { url, state } = await oidc.start(redirectUri(c), safeReturnTo(c.req.query('return_to')));
    setSignedCookie(c, SIGN_IN_STATE_COOKIE, signValue(config.secret, COOKIE_PURPOSE.signInState, { ...state }, now() + SIGN_IN_STATE_TTL_MS), SIGN_IN_STATE_TTL_MS, secure(c));
    return redirect(c, url);
  });

  const stateSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string(), returnTo: z.string() });
  app.get(OIDC_CALLBACK_PATH, async (c) => {
    if (!oidc) return render(c, errorPage(pageCtx(c, undefined), 'Not found', 'OpenID Connect sign-in is not configured.'), STATUS.notFound);
    const kept = stateSchema.safeParse(verifyValue(config.secret, COOKIE_PURPOSE.signInState, readCookie(c, SIGN_IN_STATE_COOKIE), now()));
    clearCookie(c, SIGN_IN_STATE_COOKIE, secure(c));
    const refuse = (message: string, status: 400 | 403) =>
      render(c, signInPage(pageCtx(c, undefined), { oidcLabel, localSignIn: config.localSignIn, returnTo: '/', message }), status);
    if (!kept.success) return refuse('The sign-in took too long or started in another browser. Try again.', STATUS.badRequest);
    const callback = new URL(redirectUri(c));
    callback.search = new URL(c.req.url).search;
    try {
      const identity = await oidc.finish(callback, kept.data);
      return await startSession(c, identity.email, identity.name, kept.data.returnTo, identity.verified);
    } catch (error) {
      if (error instanceof SignInRefusedError) {
        deps.logger.warn('console sign-in refused', { reason: error.message });
        return refuse(error.message, STATUS.forbidden);
      }
      deps.logger.warn('console sign-in failed', { error: describeError(error) });
      return refuse('The identity provider did not confirm the sign-in. Try again.', STATUS.badRequest);
    }
  });

  app.post(
    '/sign_out',
    action(async (c) => {
      await sessions.revoke(c.get('session').sid);
      clearCookie(c, SESSION_COOKIE, secure(c));
      return redirect(c, '/sign_in');
    }),
  );

  // --- live script validation --------------------------------------------------------------------------------------

  app.post(
    '/console/validate',
    action(async (c) => {
      const body = z.object({ script: z.string().max(DEFAULT_HTTP_LIMITS.maxScriptLength) }).safeParse(await c.req.json().catch(() => undefined));
      if (!body.success) return c.json({ message: 'expected {"script": "..."}' }, STATUS.badRequest);
      const problems: ScriptProblem[] = body.data.script.trim() === '' ? [{ line: 1, column: 1, message: "script can't be blank" }] : validateScript(body.data.script, await validationContext());
      return c.json({ problems });
    }),
  );

  // --- dashboard and definitions -----------------------------------------------------------------------------------

  /** Table rows of definitions; `starred` is the person's stars when the caller already read them. */
  const rowsFor = async (records: readonly DefinitionRecord[], email: string, starredIds?: ReadonlySet<number>): Promise<DefinitionRow[]> => {
    const ids = records.map((d) => d.id);
    const [adminsOf, latest, starred] = await Promise.all([people.adminsOf(ids), people.latestInstances(ids), starredIds ?? people.starredIds(email)]);
    return records.map((definition) => ({ definition, admins: adminsOf.get(definition.id) ?? [], latest: latest.get(definition.id), starred: starred.has(definition.id) }));
  };

  app.get(
    '/',
    page(async (c, user) => {
      const records = await people.starredDefinitions(user.email);
      const starred = await rowsFor(records, user.email, new Set(records.map((d) => d.id)));
      const at = new Date(now());
      const [working, failures, canceled] = await Promise.all([
        people.workingInstances(LIST_LIMITS.dashboard),
        people.failedInstances(LIST_LIMITS.dashboard),
        people.canceledSince(new Date(at.getTime() - LIST_LIMITS.canceledWindowMs), LIST_LIMITS.dashboard),
      ]);
      return render(c, dashboardPage({ ...pageCtx(c, user, takeFlash(c, config.secret, now(), secure(c))), user }, { starred, working, failures, canceled, now: at }));
    }),
  );

  app.get(
    '/definitions',
    page(async (c, user) => {
      const q = (c.req.query('q') ?? '').trim();
      const tags = (c.req.queries('tag') ?? []).map((t) => t.trim()).filter((t) => t !== '');
      const all = await definitions.list();
      const needle = q.toLowerCase();
      const matches = all.filter(
        (d) =>
          tags.every((t) => d.tags.includes(t)) &&
          (needle === '' || d.name.toLowerCase().includes(needle) || d.script.toLowerCase().includes(needle) || d.tags.some((t) => t.toLowerCase().includes(needle))),
      );
      const allTags = [...new Set(all.flatMap((d) => d.tags))].sort();
      return render(
        c,
        definitionListPage(
          { ...pageCtx(c, user, takeFlash(c, config.secret, now(), secure(c))), user },
          { rows: await rowsFor(matches, user.email), q, tags, allTags, total: all.length, now: new Date(now()), canCreate: user.globalAdmin, backPath: c.req.path + new URL(c.req.url).search },
        ),
      );
    }),
  );

  const timeZones = (() => {
    try {
      return Intl.supportedValuesOf('timeZone');
    } catch {
      return ['UTC'];
    }
  })();

  const formValuesOf = (d: DefinitionRecord | undefined, adminEmails: readonly string[]): DefinitionFormValues => ({
    name: d?.name ?? '',
    description: d?.description ?? '',
    script: d?.script ?? '',
    tags: d?.tags.join(', ') ?? '',
    crons: d?.crons.join('\n') ?? '',
    suspendCrons: d?.suspendCrons.join('\n') ?? '',
    timeZone: d?.timeZone ?? DEFINITION_DEFAULTS.timeZone,
    preventMulti: d?.preventMulti ?? DEFINITION_DEFAULTS.preventMulti,
    suspended: d?.suspended ?? DEFINITION_DEFAULTS.suspended,
    apiAllowed: d?.apiAllowed ?? DEFINITION_DEFAULTS.apiAllowed,
    notifyCancellation: d?.notifyCancellation ?? DEFINITION_DEFAULTS.notifyCancellation,
    notifyAll: d?.notifyAll ?? DEFINITION_DEFAULTS.notifyAll,
    slackChannel: d?.slackChannel ?? DEFINITION_DEFAULTS.slackChannel,
    webhookUrl: d?.webhookUrl ?? '',
    catchUpWindowMinutes: String(d?.catchUpWindowMinutes ?? DEFINITION_DEFAULTS.catchUpWindowMinutes),
    retentionDays: d?.retentionDays === null || d?.retentionDays === undefined ? '' : String(d.retentionDays),
    admins: adminEmails.join('\n'),
  });

  const formPage = async (
    c: Ctx,
    user: ConsoleUser,
    mode: 'new' | 'edit',
    values: DefinitionFormValues,
    errors: FieldErrors = {},
    scriptProblems: readonly ScriptProblem[] = [],
    definitionId?: number,
    status: 200 | 409 | 422 = STATUS.ok,
  ) => {
    const knownEmails = (await people.listUsers()).map((u) => u.email);
    return render(
      c,
      definitionFormPage({ ...pageCtx(c, user), user }, { mode, values, errors, scriptProblems, knownEmails, timeZones, canChangeAdmins: user.globalAdmin, ...(definitionId !== undefined ? { definitionId } : {}) }),
      status,
    );
  };

  app.get(
    '/definitions/new',
    page(async (c, user) => {
      access.requireGlobalAdmin(user, 'create job definitions');
      const from = Number(c.req.query('dup_from'));
      const source = Number.isSafeInteger(from) && from > 0 ? await definitions.find(from) : undefined;
      const values = formValuesOf(source, source ? ((await people.adminsOf([source.id])).get(source.id) ?? []) : [user.email]);
      if (source) values.name = `${source.name} (copy)`;
      return formPage(c, user, 'new', values);
    }),
  );

  /** The form's values as typed, and the API's input parsed with the API's own schema (one copy of the rules). */
  const readDefinitionForm = (body: FormBody) => {
    const values: DefinitionFormValues = {
      name: field(body, 'name'),
      description: field(body, 'description'),
      script: field(body, 'script'),
      tags: field(body, 'tags'),
      crons: field(body, 'crons'),
      suspendCrons: field(body, 'suspend_crons'),
      timeZone: field(body, 'time_zone').trim() || DEFINITION_DEFAULTS.timeZone,
      preventMulti: Number(field(body, 'prevent_multi') || PREVENT_MULTI.workingOrError),
      suspended: field(body, 'suspended') === 'true',
      apiAllowed: field(body, 'api_allowed') === 'true',
      notifyCancellation: field(body, 'notify_cancellation') === 'true',
      notifyAll: field(body, 'notify_all') === 'true',
      slackChannel: field(body, 'slack_channel').trim(),
      webhookUrl: field(body, 'webhook_url').trim(),
      catchUpWindowMinutes: field(body, 'catch_up_window_minutes').trim() || String(DEFINITION_DEFAULTS.catchUpWindowMinutes),
      retentionDays: field(body, 'retention_days').trim(),
      admins: field(body, 'admins'),
    };
    const version = Number(field(body, 'version'));
    if (field(body, 'version') !== '' && Number.isSafeInteger(version)) values.version = version;
    const errors: FieldErrors = {};
    const add = (name: string, message: string) => (errors[name] = [...(errors[name] ?? []), message]);
    const parsed = schemas.definitionCreate.safeParse({
      name: values.name,
      description: values.description,
      script: values.script,
      tags: splitTextTags(values.tags),
      cron: lines(values.crons),
      suspend_cron: lines(values.suspendCrons),
      time_zone: values.timeZone,
      prevent_multi: values.preventMulti,
      suspended: values.suspended,
      api_allowed: values.apiAllowed,
      notify_cancellation: values.notifyCancellation,
      notify_all: values.notifyAll,
      slack_channel: values.slackChannel,
      webhook_url: values.webhookUrl === '' ? null : values.webhookUrl,
      catch_up_window_minutes: values.catchUpWindowMinutes,
      retention_days: values.retentionDays ? values.retentionDays : null,
    });
    if (!parsed.success) for (const issue of parsed.error.issues) add(String(issue.path[0] ?? '_'), issue.message);
    const adminEmails = lines(values.admins.replace(/,/g, '\n')).map(normalizeEmail);
    for (const email of adminEmails) if (!/^[^@\s]+@[^@\s]+$/.test(email)) add('admins', `\`${email}\` is not an email address`);
    return { values, errors, input: parsed.success ? definitionInput(parsed.data) : undefined, adminEmails };
  };

  /** Field errors from a repository ValidationError; the script's located problems go to the editor. */
  const problemsToErrors = (problems: readonly FieldProblem[]) => {
    const errors: FieldErrors = {};
    const scriptProblems: ScriptProblem[] = [];
    for (const p of problems) {
      if (p.field === 'script' && p.line !== undefined) scriptProblems.push({ line: p.line, column: p.column ?? 1, message: p.message });
      else errors[p.field] = [...(errors[p.field] ?? []), p.message];
    }
    return { errors, scriptProblems };
  };

  app.post(
    '/definitions',
    action(async (c, user, body) => {
      access.requireGlobalAdmin(user, 'create job definitions');
      const form = readDefinitionForm(body);
      if (!form.input || Object.keys(form.errors).length > 0) return formPage(c, user, 'new', form.values, form.errors, [], undefined, STATUS.unprocessable);
      try {
        const created = await definitions.create(form.input, `console (${user.email})`, (trx, id) => people.replaceAdmins(trx, id, form.adminEmails));
        await people.setStar(user.email, created.id, true);
        return flashRedirect(c, `/definitions/${created.id}`, { kind: 'notice', text: `Created ${created.name}.` });
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        const { errors, scriptProblems } = problemsToErrors(error.problems);
        return formPage(c, user, 'new', form.values, errors, scriptProblems, undefined, STATUS.unprocessable);
      }
    }),
  );

  const namesOf = async (ids: readonly number[]): Promise<Map<number, string>> => {
    if (ids.length === 0) return new Map();
    const rows = await db.selectFrom('job_definitions').select(['id', 'name']).where('id', 'in', [...ids]).execute();
    return new Map(rows.map((r) => [Number(r.id), r.name]));
  };

  const showDefinition = async (c: Ctx, user: ConsoleUser, id: number, launch?: { script: string; env: string; problems: readonly ScriptProblem[]; error?: string }, status: 200 | 422 = STATUS.ok) => {
    const definition = await definitions.get(id);
    const before = Number(c.req.query('before'));
    const olderThan = Number.isSafeInteger(before) && before > 0 ? before : undefined;
    const [adminsOf, starred, instances, stats, names] = await Promise.all([
      people.adminsOf([id]),
      people.starredIds(user.email),
      queries.listInstances(id, { limit: LIST_LIMITS.instances, ...(olderThan ? { beforeId: olderThan } : {}) }).catch((error: unknown) => {
        if (error instanceof NotFoundError) return [];
        throw error;
      }),
      people.instanceStats(id, LIST_LIMITS.stats),
      namesOf(referencedIds(definition.script)),
    ]);
    const admins = adminsOf.get(id) ?? [];
    return render(
      c,
      definitionPage(
        { ...pageCtx(c, user, takeFlash(c, config.secret, now(), secure(c))), user },
        { definition, admins, starred: starred.has(id), canAdminister: access.administers(user, admins), instances, olderThan, stats, names, now: new Date(now()), ...(launch ? { launch } : {}), ...(services.customTasks ? { customTasks: services.customTasks } : {}) },
      ),
      status,
    );
  };

  app.get(
    `/definitions/:id${ID}`,
    page(async (c, user) => showDefinition(c, user, idParam(c, 'id'))),
  );

  app.get(
    `/definitions/:id${ID}/edit`,
    page(async (c, user) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'edit this definition');
      const definition = await definitions.get(id);
      const values = formValuesOf(definition, (await people.adminsOf([id])).get(id) ?? []);
      values.version = definition.version;
      return formPage(c, user, 'edit', values, {}, [], id);
    }),
  );

  app.post(
    `/definitions/:id${ID}`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'edit this definition');
      const current = await definitions.get(id);
      const form = readDefinitionForm(body);
      if (!form.input || Object.keys(form.errors).length > 0) return formPage(c, user, 'edit', form.values, form.errors, [], id, STATUS.unprocessable);
      if (form.values.version !== undefined && form.values.version !== current.version) {
        return formPage(c, user, 'edit', form.values, { _: ['Someone else saved this definition after you opened the form. Copy your changes, reload, and apply them again.'] }, [], id, STATUS.conflict);
      }
      try {
        // Only a global admin hands out admin rights; a definition admin's form shows the list read-only.
        const saveAdmins: AlsoWrite | undefined = user.globalAdmin ? (trx) => people.replaceAdmins(trx, id, form.adminEmails) : undefined;
        const updated = await definitions.update(id, form.input, `console (${user.email})`, saveAdmins);
        return flashRedirect(c, `/definitions/${id}`, { kind: 'notice', text: `Saved ${updated.name}.` });
      } catch (error) {
        if (error instanceof ConflictError) return formPage(c, user, 'edit', form.values, { _: [error.message] }, [], id, STATUS.conflict);
        if (!(error instanceof ValidationError)) throw error;
        const { errors, scriptProblems } = problemsToErrors(error.problems);
        return formPage(c, user, 'edit', form.values, errors, scriptProblems, id, STATUS.unprocessable);
      }
    }),
  );

  app.post(
    `/definitions/:id${ID}/delete`,
    action(async (c, user) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'delete this definition');
      const definition = await definitions.get(id);
      try {
        await definitions.delete(id, (trx) => people.forgetDefinition(trx, id));
      } catch (error) {
        if (error instanceof ConflictError) return flashRedirect(c, `/definitions/${id}`, { kind: 'error', text: error.message });
        throw error;
      }
      return flashRedirect(c, '/definitions', { kind: 'notice', text: `Deleted ${definition.name}.` });
    }),
  );

  app.post(
    `/definitions/:id${ID}/suspend`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'suspend or resume this definition');
      const suspended = field(body, 'suspended') === 'true';
      const updated = await definitions.update(id, { suspended }, `console (${user.email})`);
      return flashRedirect(c, `/definitions/${id}`, { kind: 'notice', text: suspended ? `Suspended the schedules of ${updated.name}.` : `Resumed the schedules of ${updated.name}.` });
    }),
  );

  app.post(
    `/definitions/:id${ID}/star`,
    action(async (c, user, body) => {
      // A star is the person's own bookmark, so viewers may star too.
      const id = idParam(c, 'id');
      await definitions.get(id);
      await people.setStar(user.email, id, field(body, 'starred') === 'true');
      return redirect(c, safeReturnTo(field(body, 'back') || `/definitions/${id}`));
    }),
  );

  app.get(
    `/definitions/:id${ID}/revisions`,
    page(async (c, user) => {
      const id = idParam(c, 'id');
      const definition = await definitions.get(id);
      return render(c, revisionsPage({ ...pageCtx(c, user), user }, definition, await people.revisions(id, LIST_LIMITS.revisions)));
    }),
  );

  // --- instances ---------------------------------------------------------------------------------------------------

  app.post(
    `/definitions/:id${ID}/instances`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'launch this definition');
      const definition = await definitions.get(id);
      const script = field(body, 'script');
      const envText = field(body, 'env');
      const env = parseEnvLines(envText);
      const adHoc = script.replace(/\r\n/g, '\n');
      const parsed = schemas.launch.safeParse({ env: env.env, ...(adHoc.trim() !== '' && adHoc !== definition.script ? { script: adHoc } : {}) });
      if (env.problems.length > 0 || !parsed.success) {
        const message = [...env.problems, ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`))].join('; ');
        return showDefinition(c, user, id, { script, env: envText, problems: [], error: message }, STATUS.unprocessable);
      }
      // An ad-hoc script may start other definitions as sub processes: only those the person administers.
      if (parsed.data.script !== undefined) {
        for (const target of subProcessTargets(parseScriptRecovering(parsed.data.script).root)) {
          if (target !== id && (await definitions.find(target))) await access.requireDefinitionAdmin(user, target, `start job definition ${target} as a sub process`);
        }
      }
      try {
        const result = await services.operations.launch({
          definitionId: id,
          launchedBy: `console (${user.email})`,
          ...(Object.keys(parsed.data.env ?? {}).length > 0 ? { env: parsed.data.env } : {}),
          ...(parsed.data.script !== undefined ? { script: parsed.data.script } : {}),
        });
        if (!result.blocked) deps.onLaunch();
        const flash: Flash = result.blocked
          ? { kind: 'error', text: 'Not launched: another instance is working or failed, and this definition does not allow overlap. The new instance was canceled.' }
          : { kind: 'notice', text: `Launched instance #${result.instance.id}.` };
        return flashRedirect(c, `/definitions/${id}/instances/${result.instance.id}`, flash);
      } catch (error) {
        if (error instanceof ScriptError) {
          return showDefinition(c, user, id, { script, env: envText, problems: error.problems, error: 'The script has errors; nothing was launched.' }, STATUS.unprocessable);
        }
        if (error instanceof ValidationError) return showDefinition(c, user, id, { script, env: envText, problems: [], error: error.message }, STATUS.unprocessable);
        throw error;
      }
    }),
  );

  const instanceView = async (c: Ctx, user: ConsoleUser): Promise<InstanceView> => {
    const id = idParam(c, 'id');
    const [{ definitionName, ...read }, canAdminister] = await Promise.all([people.instancePage(id, idParam(c, 'iid')), access.canAdminister(user, id)]);
    return { definition: { id, name: definitionName }, ...read, canAdminister, user, now: new Date(now()) };
  };

  app.get(
    `/definitions/:id${ID}/instances/:iid${ID}`,
    page(async (c, user) => {
      const view = await instanceView(c, user);
      const logs = await queries.listLogs(view.detail.instance.id, { limit: DEFAULT_HTTP_LIMITS.maxPageSize, offset: 0 });
      return render(c, instancePage({ ...pageCtx(c, user, takeFlash(c, config.secret, now(), secure(c))), user }, view, logs));
    }),
  );

  app.get(
    `/definitions/:id${ID}/instances/:iid${ID}/live`,
    page(async (c, user) => {
      const view = await instanceView(c, user);
      const logsParam = c.req.query('logs');
      // `logs=1e400` is Infinity to Number(); only a plain count is a log offset.
      if (logsParam !== undefined && logsParam !== '' && !/^\d{1,9}$/.test(logsParam)) throw new BadRequest('logs must be a count of log lines already shown');
      const offset = logsParam ? Number(logsParam) : 0;
      const logs = await queries.listLogs(view.detail.instance.id, { limit: DEFAULT_HTTP_LIMITS.maxPageSize, offset });
      return c.json({
        status: instanceStatus(view.detail.instance),
        done: instanceStatus(view.detail.instance) !== INSTANCE_STATUS.working,
        fragments: {
          [FRAGMENT_IDS.summary]: summaryFragment(view).value,
          [FRAGMENT_IDS.tokens]: tokensFragment(view).value,
          [FRAGMENT_IDS.executions]: executionsFragment(view).value,
        },
        logs: logs.map((l) => logLine(l).value),
        logCount: offset + logs.length,
      });
    }),
  );

  /** Runs an instance operation; a state conflict comes back as a message on the instance page. */
  const operate = (what: string, run: (c: Ctx, user: ConsoleUser, instanceId: number) => Promise<unknown>, done: string) =>
    action(async (c, user) => {
      const id = idParam(c, 'id');
      const instanceId = idParam(c, 'iid');
      await access.requireDefinitionAdmin(user, id, what);
      const instance = await queries.findInstance(instanceId);
      if (!instance || instance.definitionId !== id) throw new NotFoundError('job instance', instanceId);
      const to = `/definitions/${id}/instances/${instanceId}`;
      try {
        await run(c, user, instanceId);
      } catch (error) {
        if (error instanceof ConflictError) return flashRedirect(c, to, { kind: 'error', text: error.message });
        throw error;
      }
      deps.onLaunch();
      return flashRedirect(c, to, { kind: 'notice', text: done });
    });

  const by = (user: ConsoleUser) => `${user.name} <${user.email}>`;
  app.post(`/definitions/:id${ID}/instances/:iid${ID}/cancel`, operate('cancel this instance', (_c, user, iid) => services.operations.cancel(iid, by(user)), 'Canceled; its running commands are being killed.'));
  app.post(
    `/definitions/:id${ID}/instances/:iid${ID}/tokens/:tid${ID}/retry`,
    operate('retry this token', (c, user, iid) => services.operations.retryToken(iid, idParam(c, 'tid'), by(user)), 'Retrying.'),
  );
  app.post(
    `/definitions/:id${ID}/instances/:iid${ID}/tokens/:tid${ID}/skip`,
    operate('skip this token', (c, user, iid) => services.operations.skipToken(iid, idParam(c, 'tid'), by(user)), 'Skipped.'),
  );
  app.post(
    `/definitions/:id${ID}/instances/:iid${ID}/executions/:eid${ID}/terminate`,
    operate('terminate this command', (c, user, iid) => services.operations.terminateExecution(iid, idParam(c, 'eid'), by(user)), 'Terminating the command (TERM, then KILL).'),
  );

  // --- operations ----------------------------------------------------------------------------------------------------

  app.get(
    '/instances/working',
    page(async (c, user) => render(c, workingPage({ ...pageCtx(c, user), user }, await people.workingInstances(LIST_LIMITS.working), new Date(now())))),
  );

  app.get(
    '/executions',
    page(async (c, user) => {
      const executions = await queries.listUnfinishedExecutions(LIST_LIMITS.executions);
      return render(c, executionsPage({ ...pageCtx(c, user), user }, executions));
    }),
  );

  app.get(
    '/workers',
    page(async (c, user) => render(c, workersPage({ ...pageCtx(c, user, takeFlash(c, config.secret, now(), secure(c))), user }, await queries.listWorkers()))),
  );

  app.post(
    `/workers/:id${ID}/suspend`,
    action(async (c, user, body) => {
      access.requireGlobalAdmin(user, 'suspend or resume workers');
      const suspended = field(body, 'suspended') === 'true';
      const worker = await queries.setWorkerSuspended(idParam(c, 'id'), suspended);
      return flashRedirect(c, '/workers', { kind: 'notice', text: suspended ? `Suspended ${worker.hostname}: it claims nothing new.` : `Resumed ${worker.hostname}.` });
    }),
  );

  app.get(
    '/timeline',
    page(async (c, user) => {
      const view = c.req.query('view') === 'jobs' ? 'jobs' : 'workers';
      const requested = c.req.query('period') ?? '1h';
      const period: TimelinePeriod = requested in TIMELINE_PERIODS ? (requested as TimelinePeriod) : '1h';
      const to = new Date(now());
      const from = new Date(to.getTime() - TIMELINE_PERIODS[period]);
      const host = c.req.query('host') || undefined;
      const bars =
        view === 'workers' ? await people.executionTimeline(from, to, LIST_LIMITS.timeline, host) : await people.instanceTimeline(from, to, LIST_LIMITS.timeline);
      return render(c, timelinePage({ ...pageCtx(c, user), user }, { view, period, from, to, bars, host }));
    }),
  );

  return app;
}

