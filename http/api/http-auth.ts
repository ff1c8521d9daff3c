/**
 * HTTP Basic authentication against `api_clients` (Kuroko2's scheme, with hashed secrets and scopes).
 *
 * Secrets are stored as `scrypt$N$r$p$salt$hash` (base64url salt and hash). scrypt costs tens of milliseconds on
 * purpose, so a verified (name, secret, stored hash) triple is remembered in memory under an HMAC with a key that
 * never leaves the process; a changed secret changes the stored hash and misses the cache.
 */
import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { ConfigError } from '../../core/errors';
import { API_CLIENT_NAME_PATTERN, API_SCOPE, isApiScope, scopeAllows } from '../../db/repositories/api-client-repository';
import type { ApiClientRecord, ApiClientRepository, ApiScope } from '../../db/repositories/api-client-repository';
import { ApiError, HTTP_STATUS } from '../http-errors';
import type { HttpLogger } from '../http-errors';
import { LoginLimitedError, type LoginLimiter } from '../login-limiter';

const TOO_MANY_REQUESTS = 429;
/** Shorter secrets can be guessed; generated ones are 43 characters. */
const MIN_SECRET_LENGTH = 16;

/** Interactive-login strength (RFC 7914's recommendation); about 16 MiB of memory per hash. */
const SCRYPT_PARAMS = { N: 16_384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const GENERATED_SECRET_BYTES = 32;
/** Bounds on parameters read back from the database, so a tampered row cannot make a request allocate gigabytes. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;
const SCRYPT_MEMORY_FACTOR = 128;
const SCRYPT_MEMORY_SLACK = 2;
const VERIFIED_CACHE_LIMIT = 1_000;
const VERIFIED_CACHE_TTL_MS = 5 * 60 * 1000;
/** The longest Authorization header worth decoding: a 100-character name and a 1 KiB secret, base64-encoded. */
const MAX_AUTHORIZATION_LENGTH = 2_048;
export const MAX_SECRET_LENGTH = 1_024;

export const WWW_AUTHENTICATE = 'Basic realm="kuroko", charset="UTF-8"';

/** The authenticated client, set on the request context by the authenticator. */
export interface AuthenticatedClient {
  id: number;
  name: string;
  scope: ApiScope;
}

function scrypt(secret: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(secret, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function memoryFor(n: number, r: number, p: number): number {
  return SCRYPT_MEMORY_FACTOR * n * r * (p + SCRYPT_MEMORY_SLACK);
}

/** Hashes a secret with scrypt and a fresh random salt, as `scrypt$N$r$p$salt$hash`. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const { N, r, p } = SCRYPT_PARAMS;
  const key = await scrypt(secret, salt, KEY_BYTES, { N, r, p, maxmem: memoryFor(N, r, p) });
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** True when `secret` matches the stored hash; false for a hash in an unknown or unsafe format. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  const sane = [n, r, p].every(Number.isSafeInteger) && n > 1 && (n & (n - 1)) === 0 && n <= MAX_N && r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P;
  if (!sane || salt.length === 0 || expected.length === 0) return false;
  const actual = await scrypt(secret, salt, expected.length, { N: n, r, p, maxmem: memoryFor(n, r, p) });
  return timingSafeEqual(actual, expected);
}

/** A new random secret for a client (printed once by `kuroko api-client create`). */
export function generateSecret(): string {
  return randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
}

/** Name and secret from an `Authorization: Basic` header, or undefined when absent or malformed. */
export function parseBasicAuthorization(header: string | undefined): { name: string; secret: string } | undefined {
  if (!header || header.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** Checks credentials; remembers successes for a while so a busy client does not pay scrypt on every request. */
export class ApiClientAuthenticator {
  private readonly cacheKey = randomBytes(KEY_BYTES);
  private readonly verified = new Map<string, number>();
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly clients: ApiClientRepository,
    private readonly now: () => number = Date.now,
    private readonly limiter?: LoginLimiter,
  ) {}

  /**
   * The client when the credentials are right, else undefined. Unknown names still cost one hash. With a limiter,
   * throws LoginLimitedError (before any hash) while the name or the address has failed too often.
   */
  async authenticate(name: string, secret: string, address?: string): Promise<ApiClientRecord | undefined> {
    if (secret.length > MAX_SECRET_LENGTH || !API_CLIENT_NAME_PATTERN.test(name)) {
      await this.limiter?.check(name, address);
      await this.burnHash(secret.slice(0, MAX_SECRET_LENGTH));
      await this.limiter?.recordFailure(name, address);
      return undefined;
    }
    const client = await this.clients.findByName(name);
    const key = client ? createHmac('sha256', this.cacheKey).update(`${name}\0${secret}\0${client.secretHash}`).digest('base64') : '';
    const until = this.verified.get(key);
    if (client && until !== undefined && until > this.now()) return client;
    await this.limiter?.check(name, address);
    if (!client) {
      await this.burnHash(secret);
      await this.limiter?.recordFailure(name, address);
      return undefined;
    }
    if (!(await verifySecret(secret, client.secretHash))) {
      await this.limiter?.recordFailure(name, address);
      return undefined;
    }
    if (this.verified.size >= VERIFIED_CACHE_LIMIT) this.verified.clear();
    this.verified.set(key, this.now() + VERIFIED_CACHE_TTL_MS);
    return client;
  }

  private async burnHash(secret: string): Promise<void> {
    this.dummyHash ??= hashSecret(generateSecret());
    await verifySecret(secret, await this.dummyHash);
  }
}

/** Middleware: 401 with `WWW-Authenticate: Basic` unless the request carries a known client's credentials. */
export function authenticate(
  authenticator: ApiClientAuthenticator,
  logger: HttpLogger,
  clientAddress?: (c: Context) => string | undefined,
): MiddlewareHandler<{ Variables: { client: AuthenticatedClient } }> {
  const unauthorized = (message: string) => new ApiError(HTTP_STATUS.unauthorized, message, [], { 'WWW-Authenticate': WWW_AUTHENTICATE });
  return async (c, next) => {
    const credentials = parseBasicAuthorization(c.req.header('authorization'));
    if (!credentials) throw unauthorized('HTTP Basic credentials of an API client are required');
    let client: ApiClientRecord | undefined;
    try {
      client = await authenticator.authenticate(credentials.name, credentials.secret, clientAddress?.(c));
    } catch (error) {
      if (!(error instanceof LoginLimitedError)) throw error;
      logger.warn('API authentication refused: too many failed logins', { client: credentials.name.slice(0, API_NAME_LOG_LENGTH), path: c.req.path });
      throw new ApiError(TOO_MANY_REQUESTS, error.message, [], { 'Retry-After': String(error.retryAfterSeconds) });
    }
    if (!client) {
      // The name helps spot a misconfigured client; the secret is never logged.
      logger.warn('API authentication failed', { client: credentials.name.slice(0, API_NAME_LOG_LENGTH), path: c.req.path });
      throw unauthorized('the API client name or secret is wrong');
    }
    c.set('client', { id: client.id, name: client.name, scope: client.scope });
    await next();
  };
}

const API_NAME_LOG_LENGTH = 100;

/** Middleware: 403 unless the authenticated client's scope covers `need`. */
export function requireScope(need: ApiScope): MiddlewareHandler<{ Variables: { client: AuthenticatedClient } }> {
  return async (c, next) => {
    const client = c.get('client');
    if (!scopeAllows(client.scope, need)) {
      throw new ApiError(HTTP_STATUS.forbidden, `API client ${client.name} has the ${client.scope} scope; this request needs ${need}`);
    }
    await next();
  };
}

export interface ApiClientSpec {
  name: string;
  secret: string;
  scope: ApiScope;
}

/**
 * Parses `KUROKO_API_CLIENTS`: `name:secret[:scope]` entries separated by commas, scope admin when omitted. A
 * secret may hold `:`; a last part that names a scope is the scope. Throws ConfigError listing every bad entry.
 */
export function parseApiClientsSpec(spec: string): ApiClientSpec[] {
  const problems: string[] = [];
  const clients: ApiClientSpec[] = [];
  const entries = spec.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const [index, entry] of entries.entries()) {
    const parts = entry.split(':');
    const name = parts[0] ?? '';
    let scope: ApiScope = API_SCOPE.admin;
    let secretParts = parts.slice(1);
    const last = parts[parts.length - 1] ?? '';
    if (parts.length >= 3 && isApiScope(last)) {
      scope = last;
      secretParts = parts.slice(1, -1);
    }
    const secret = secretParts.join(':');
    const where = `KUROKO_API_CLIENTS entry ${index + 1}`;
    if (!API_CLIENT_NAME_PATTERN.test(name)) problems.push(`${where}: the name must match ${API_CLIENT_NAME_PATTERN.source}`);
    else if (secret === '') problems.push(`${where} (${name}): needs a secret (name:secret[:scope])`);
    else if (secret.length > MAX_SECRET_LENGTH) problems.push(`${where} (${name}): the secret is longer than ${MAX_SECRET_LENGTH} characters`);
    else if (secret.length < MIN_SECRET_LENGTH) problems.push(`${where} (${name}): the secret must be at least ${MIN_SECRET_LENGTH} characters long`);
    else if (clients.some((c) => c.name === name)) problems.push(`${where}: ${name} is listed twice`);
    else clients.push({ name, secret, scope });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return clients;
}

/** Creates or updates the clients of `KUROKO_API_CLIENTS` at start; a client whose secret and scope match is left alone. */
export async function ensureApiClients(repository: ApiClientRepository, spec: string | readonly ApiClientSpec[]): Promise<void> {
  const clients = typeof spec === 'string' ? parseApiClientsSpec(spec) : spec;
  for (const client of clients) {
    const existing = await repository.findByName(client.name);
    if (existing && existing.scope === client.scope && (await verifySecret(client.secret, existing.secretHash))) continue;
    await repository.upsert(client.name, await hashSecret(client.secret), client.scope);
  }
}
