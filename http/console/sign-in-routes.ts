/**
 * Signing in and out: the sign-in page, the local mode's one-time links, OpenID Connect (start and callback), and
 * sign-out, which ends the session on the server too.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { describeError } from '../../core/errors';
import { normalizeEmail } from '../../core/sign-in-rules';
import { STATUS, type ConsoleEnv, type ConsoleKit, type Ctx } from './console-context';
import { LOCAL_USER } from './console-config';
import {
  clearCookie,
  COOKIE_PURPOSE,
  encodeSession,
  newSession,
  readCookie,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  setSignedCookie,
  signValue,
  SIGN_IN_STATE_COOKIE,
  SIGN_IN_STATE_TTL_MS,
  verifyValue,
} from './console-session';
import { LOCAL_SIGN_IN_PATH } from './local-sign-in';
import { OIDC_CALLBACK_PATH, OIDC_START_PATH, OidcSignIn, SignInRefusedError } from './oidc-sign-in';
import { errorPage, signInPage } from './operations-pages';
import { safeReturnTo } from './return-to';

const stateSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string(), returnTo: z.string() });

/** The sign-in and sign-out routes. */
export function signInRoutes(kit: ConsoleKit): Hono<ConsoleEnv> {
  const { config, logger, now, render, redirect, pageCtx, secure } = kit;
  const app = new Hono<ConsoleEnv>();
  const oidc = config.oidc ? new OidcSignIn(config.oidc) : undefined;
  const oidcLabel = config.oidc ? new URL(config.oidc.issuer).hostname : undefined;
  const signIn = (c: Ctx, returnTo: string, message?: string) =>
    signInPage(pageCtx(c, undefined, message === undefined ? kit.flash(c) : undefined), { oidcLabel, localSignIn: config.localSignIn, returnTo, ...(message ? { message } : {}) });

  app.get('/sign_in', async (c) => {
    if (await kit.currentUser(c)) return redirect(c, safeReturnTo(c.req.query('return_to')));
    return render(c, signIn(c, safeReturnTo(c.req.query('return_to'))));
  });

  const startSession = async (c: Ctx, email: string, name: string, to: string, verified = true) => {
    await kit.people.recordSignIn(email, name);
    const session = newSession(normalizeEmail(email), name, now(), verified);
    await kit.sessions.create(session.sid, session.email, new Date(session.expiresAt));
    setSignedCookie(c, SESSION_COOKIE, encodeSession(config.secret, session), SESSION_TTL_MS, secure(c));
    return redirect(c, safeReturnTo(to));
  };

  app.get(LOCAL_SIGN_IN_PATH, async (c) => {
    if (!config.localSignIn || !kit.localSignIn?.redeem(c.req.query('token'))) {
      logger.warn('console sign-in refused: unknown, used or expired one-time link', {});
      const message = 'This sign-in link is unknown, was already used, or has expired. Restart kuroko dev for a new one.';
      return render(c, signIn(c, '/', message), STATUS.forbidden);
    }
    return startSession(c, LOCAL_USER.email, LOCAL_USER.name, '/');
  });

  const redirectUri = (c: Ctx) => `${config.baseUrl ?? new URL(c.req.url).origin}${OIDC_CALLBACK_PATH}`;
  const notConfigured = (c: Ctx) => render(c, errorPage(pageCtx(c, undefined), 'Not found', 'OpenID Connect sign-in is not configured.'), STATUS.notFound);

  app.get(OIDC_START_PATH, async (c) => {
    if (!oidc) return notConfigured(c);
    const { url, state } = await oidc.start(redirectUri(c), safeReturnTo(c.req.query('return_to')));
    setSignedCookie(c, SIGN_IN_STATE_COOKIE, signValue(config.secret, COOKIE_PURPOSE.signInState, { ...state }, now() + SIGN_IN_STATE_TTL_MS), SIGN_IN_STATE_TTL_MS, secure(c));
    return redirect(c, url);
  });

  app.get(OIDC_CALLBACK_PATH, async (c) => {
    if (!oidc) return notConfigured(c);
    const kept = stateSchema.safeParse(verifyValue(config.secret, COOKIE_PURPOSE.signInState, readCookie(c, SIGN_IN_STATE_COOKIE), now()));
    clearCookie(c, SIGN_IN_STATE_COOKIE, secure(c));
    const refuse = (message: string, status: 400 | 403) => render(c, signIn(c, '/', message), status);
    if (!kept.success) return refuse('The sign-in took too long or started in another browser. Try again.', STATUS.badRequest);
    const callback = new URL(redirectUri(c));
    callback.search = new URL(c.req.url).search;
    try {
      const identity = await oidc.finish(callback, kept.data);
      return await startSession(c, identity.email, identity.name, kept.data.returnTo, identity.verified);
    } catch (error) {
      if (error instanceof SignInRefusedError) {
        logger.warn('console sign-in refused', { reason: error.message });
        return refuse(error.message, STATUS.forbidden);
      }
      logger.warn('console sign-in failed', { error: describeError(error) });
      return refuse('The identity provider did not confirm the sign-in. Try again.', STATUS.badRequest);
    }
  });

  app.post(
    '/sign_out',
    kit.action(async (c) => {
      await kit.sessions.revoke(c.get('session').sid);
      clearCookie(c, SESSION_COOKIE, secure(c));
      return redirect(c, '/sign_in');
    }),
  );

  return app;
}
