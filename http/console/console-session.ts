/**
 * Sessions in signed cookies: `base64url(JSON).base64url(HMAC-SHA256(secret, purpose + JSON))`. The purpose is
 * part of what is signed, so a value signed for one cookie (the sign-in state) can never be replayed as another
 * (a session). A session cookie also names a random session id that must still exist server-side
 * (db/repositories/session-repository.ts): signing out deletes it, so a copy of the cookie stops working too.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';

export const SESSION_COOKIE = 'kuroko_session';
export const SIGN_IN_STATE_COOKIE = 'kuroko_sign_in';
export const FLASH_COOKIE = 'kuroko_flash';

/** A working day and then some: long enough not to nag, short enough that a lost laptop's session runs out. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Time to finish signing in at the provider. */
export const SIGN_IN_STATE_TTL_MS = 10 * 60 * 1000;
const FLASH_TTL_MS = 60 * 1000;
const CSRF_BYTES = 24;

export const COOKIE_PURPOSE = { session: 'session', signInState: 'sign-in-state', flash: 'flash' } as const;
export type CookiePurpose = (typeof COOKIE_PURPOSE)[keyof typeof COOKIE_PURPOSE];

const envelope = z.object({ exp: z.number() }).loose();

function mac(secret: string, purpose: CookiePurpose, payload: string): Buffer {
  return createHmac('sha256', secret).update(`${purpose}.${payload}`).digest();
}

/** Signs a value for a purpose with an expiry (epoch ms). */
export function signValue(secret: string, purpose: CookiePurpose, value: Record<string, unknown>, expiresAt: number): string {
  const payload = Buffer.from(JSON.stringify({ ...value, exp: expiresAt })).toString('base64url');
  return `${payload}.${mac(secret, purpose, payload).toString('base64url')}`;
}

/** The value when the signature is right for the purpose and it has not expired, else undefined. */
export function verifyValue(secret: string, purpose: CookiePurpose, token: string | undefined, now: number): Record<string, unknown> | undefined {
  if (!token) return undefined;
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = mac(secret, purpose, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const parsed = envelope.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
    if (!parsed.success || parsed.data.exp <= now) return undefined;
    return parsed.data;
  } catch {
    return undefined;
  }
}

/** A signed-in person. The role is not stored: it is worked out on every request from the current config and rows. */
export interface ConsoleSession {
  /** The random id whose digest the console_sessions table keeps. */
  sid: string;
  email: string;
  name: string;
  /** False only when a deployment lets unverified emails in (KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL): such a person is a viewer. */
  verified: boolean;
  /** The per-session CSRF token every console write must carry. */
  csrf: string;
  expiresAt: number;
}

const sessionSchema = z.object({ sid: z.string().min(1), email: z.string().min(1), name: z.string(), verified: z.boolean(), csrf: z.string().min(1), exp: z.number() });
const SESSION_ID_BYTES = 32;

/** A fresh session for a person, with a new session id and CSRF token. */
export function newSession(email: string, name: string, now: number, verified = true): ConsoleSession {
  return {
    sid: randomBytes(SESSION_ID_BYTES).toString('base64url'),
    email,
    name,
    verified,
    csrf: randomBytes(CSRF_BYTES).toString('base64url'),
    expiresAt: now + SESSION_TTL_MS,
  };
}

/** The cookie value of a session. */
export function encodeSession(secret: string, session: ConsoleSession): string {
  return signValue(secret, COOKIE_PURPOSE.session, { sid: session.sid, email: session.email, name: session.name, verified: session.verified, csrf: session.csrf }, session.expiresAt);
}

/** The session a cookie value holds, or undefined when it is forged, for another purpose, or expired. */
export function decodeSession(secret: string, token: string | undefined, now: number): ConsoleSession | undefined {
  const value = sessionSchema.safeParse(verifyValue(secret, COOKIE_PURPOSE.session, token, now));
  if (!value.success) return undefined;
  return { sid: value.data.sid, email: value.data.email, name: value.data.name, verified: value.data.verified, csrf: value.data.csrf, expiresAt: value.data.exp };
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: ConsoleSession, submitted: string | undefined): boolean {
  if (!submitted) return false;
  const a = Buffer.from(submitted);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when the request reached us over https (directly, or through a proxy or function URL that says so). */
export function isHttps(c: Context, baseUrl: string | undefined): boolean {
  if (baseUrl) return baseUrl.startsWith('https:');
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

/** Sets a signed cookie: HttpOnly, SameSite=Lax, Secure over https, for the whole site. */
export function setSignedCookie(c: Context, name: string, value: string, maxAgeMs: number, secure: boolean): void {
  setCookie(c, name, value, { httpOnly: true, sameSite: 'Lax', secure, path: '/', maxAge: Math.floor(maxAgeMs / 1000) });
}

/** Reads a cookie. */
export function readCookie(c: Context, name: string): string | undefined {
  return getCookie(c, name);
}

/** Removes a cookie. */
export function clearCookie(c: Context, name: string, secure: boolean): void {
  deleteCookie(c, name, { path: '/', secure, httpOnly: true, sameSite: 'Lax' });
}

/** A one-shot message shown on the next page (after a redirect). */
export interface Flash {
  kind: 'notice' | 'error';
  text: string;
}

const flashSchema = z.object({ kind: z.enum(['notice', 'error']), text: z.string() });

/** Stores a flash message for the next page. */
export function setFlash(c: Context, secret: string, flash: Flash, now: number, secure: boolean): void {
  setSignedCookie(c, FLASH_COOKIE, signValue(secret, COOKIE_PURPOSE.flash, { ...flash }, now + FLASH_TTL_MS), FLASH_TTL_MS, secure);
}

/** Reads and clears the flash message, if any. */
export function takeFlash(c: Context, secret: string, now: number, secure: boolean): Flash | undefined {
  const token = readCookie(c, FLASH_COOKIE);
  if (!token) return undefined;
  clearCookie(c, FLASH_COOKIE, secure);
  const parsed = flashSchema.safeParse(verifyValue(secret, COOKIE_PURPOSE.flash, token, now));
  return parsed.success ? parsed.data : undefined;
}
