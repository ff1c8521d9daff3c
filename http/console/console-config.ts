/**
 * The console's configuration, read once by a composition root: the cookie signing key, the OpenID Connect
 * provider, the allowed domains, the global admins, and whether the one-time local sign-in link is offered.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../core/errors';
import { isEmailAddress, normalizeDomain, normalizeEmail } from '../../core/sign-in-rules';
import { trimBaseUrl } from '../../core/urls';
import { ENV_KEYS } from '../../app/config/env-keys';

export const CONSOLE_ENV_KEYS = {
  secret: ENV_KEYS.consoleSecret,
  oidcIssuer: ENV_KEYS.oidcIssuer,
  oidcClientId: ENV_KEYS.oidcClientId,
  oidcClientSecret: ENV_KEYS.oidcClientSecret,
  oidcAllowedDomains: ENV_KEYS.oidcAllowedDomains,
  oidcAllowUnverifiedEmail: ENV_KEYS.oidcAllowUnverifiedEmail,
  admins: ENV_KEYS.consoleAdmins,
  baseUrl: ENV_KEYS.baseUrl,
} as const;

/** HMAC-SHA256 wants a key at least as long as its output. */
const MIN_SECRET_LENGTH = 32;
const GENERATED_SECRET_BYTES = 48;
/** `*` in the allowed-domain list lets any verified email in (as a viewer). */
export const ANY_DOMAIN = '*';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Lower-cased email domains (or `hd` values) allowed to sign in; `*` allows any. */
  allowedDomains: string[];
  /**
   * Let in a person whose ID token and UserInfo carry no `email_verified` claim (providers that never send it), as a
   * viewer: admin rights always need `email_verified: true`. `false` is refused either way. Off by default.
   */
  allowUnverifiedEmail?: boolean;
}

export interface ConsoleConfig {
  /** The cookie signing key. */
  secret: string;
  oidc: OidcSettings | undefined;
  /** Lower-cased emails of global admins. */
  admins: string[];
  /** Offer the one-time sign-in link (the local mode, or a server without OIDC). */
  localSignIn: boolean;
  /** The public URL of the console when it sits behind a proxy (redirect URIs are built from it). */
  baseUrl: string | undefined;
}

/** The identity the one-time link signs in as: a global admin of the local installation. */
export const LOCAL_USER = { email: 'admin@localhost', name: 'Local admin' } as const;

const list = (text: string | undefined) =>
  (text ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

export interface ReadConsoleConfigOptions {
  /** A file that keeps a generated secret when KUROKO_CONSOLE_SECRET is unset (the local mode's data dir). */
  secretFile?: string;
  /** Whether the one-time link is offered when OIDC is configured too (the local mode always offers it). */
  localSignIn: 'always' | 'without-oidc' | 'never';
  /** Called when a secret had to be generated for this process only (sessions end with it). */
  warn?: (message: string) => void;
}

/** What is wrong with a (trimmed, non-empty) cookie-signing key: nothing, or that it is too short. */
export function signingKeyProblems(secret: string): string[] {
  return secret.length < MIN_SECRET_LENGTH ? [`${CONSOLE_ENV_KEYS.secret} must be at least ${MIN_SECRET_LENGTH} characters long`] : [];
}

/** Reads the console's configuration from the environment; throws ConfigError listing every problem. */
export function readConsoleConfig(env: Readonly<Record<string, string | undefined>>, options: ReadConsoleConfigOptions): ConsoleConfig {
  const problems: string[] = [];
  let secret = env[CONSOLE_ENV_KEYS.secret]?.trim() ?? '';
  if (secret !== '') problems.push(...signingKeyProblems(secret));
  if (secret === '') {
    if (options.secretFile) secret = loadOrCreateSecret(options.secretFile);
    else {
      secret = randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
      options.warn?.(`${CONSOLE_ENV_KEYS.secret} is not set: console sessions end when this process stops`);
    }
  }
  const issuer = env[CONSOLE_ENV_KEYS.oidcIssuer]?.trim() ?? '';
  const clientId = env[CONSOLE_ENV_KEYS.oidcClientId]?.trim() ?? '';
  const clientSecret = env[CONSOLE_ENV_KEYS.oidcClientSecret]?.trim() ?? '';
  const allowedDomains = list(env[CONSOLE_ENV_KEYS.oidcAllowedDomains]).map(normalizeDomain);
  let oidc: OidcSettings | undefined;
  if (issuer !== '' || clientId !== '' || clientSecret !== '') {
    if (!z.url({ protocol: /^https?$/ }).safeParse(issuer).success) problems.push(`${CONSOLE_ENV_KEYS.oidcIssuer} must be the issuer's http(s) URL`);
    if (clientId === '') problems.push(`${CONSOLE_ENV_KEYS.oidcClientId} is required with ${CONSOLE_ENV_KEYS.oidcIssuer}`);
    if (clientSecret === '') problems.push(`${CONSOLE_ENV_KEYS.oidcClientSecret} is required with ${CONSOLE_ENV_KEYS.oidcIssuer}`);
    if (allowedDomains.length === 0) {
      problems.push(`${CONSOLE_ENV_KEYS.oidcAllowedDomains} is required with ${CONSOLE_ENV_KEYS.oidcIssuer}: the email domains allowed to sign in, or ${ANY_DOMAIN}`);
    }
    const unverified = env[CONSOLE_ENV_KEYS.oidcAllowUnverifiedEmail]?.trim() ?? '';
    if (unverified !== '' && unverified !== 'true' && unverified !== 'false') problems.push(`${CONSOLE_ENV_KEYS.oidcAllowUnverifiedEmail} must be true or false`);
    oidc = { issuer, clientId, clientSecret, allowedDomains, ...(unverified === 'true' ? { allowUnverifiedEmail: true } : {}) };
  }
  const admins = list(env[CONSOLE_ENV_KEYS.admins]).map(normalizeEmail);
  for (const admin of admins) if (!isEmailAddress(admin)) problems.push(`${CONSOLE_ENV_KEYS.admins}: \`${admin}\` is not an email address`);
  const baseUrl = env[CONSOLE_ENV_KEYS.baseUrl]?.trim() || undefined;
  if (baseUrl !== undefined && !z.url({ protocol: /^https?$/ }).safeParse(baseUrl).success) problems.push(`${CONSOLE_ENV_KEYS.baseUrl} must be an http(s) URL`);
  if (problems.length > 0) throw new ConfigError(problems);
  const localSignIn = options.localSignIn === 'always' || (options.localSignIn === 'without-oidc' && oidc === undefined);
  return { secret, oidc, admins, localSignIn, baseUrl: baseUrl === undefined ? undefined : trimBaseUrl(baseUrl) };
}

/** The secret kept in `file`, created (mode 0600) on first use so sessions survive restarts of the local mode. */
export function loadOrCreateSecret(file: string): string {
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored.length >= MIN_SECRET_LENGTH) return stored;
  }
  const secret = randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
