/**
 * Issue 13, finding 4 (OIDC): an email whose `email_verified` claim was missing or not `true` signed in, and a
 * configured admin email skipped the domain check, so a provider that allows unverified emails handed out global
 * admin. A small OpenID provider on loopback signs real ID tokens (RS256, JWKS) with the claims each case needs;
 * the console's real openid-client code redeems them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OidcSettings } from '../../http/console/console-config';
import { readConsoleConfig } from '../../http/console/console-config';
import { OidcSignIn, SignInRefusedError } from '../../http/console/oidc-sign-in';

const CLIENT = { id: 'kuroko-console', secret: 'a-client-secret-for-tests' };
const REDIRECT = 'http://127.0.0.1:1/auth/oidc/callback';

describe('OIDC sign-in requires a verified email', () => {
  let server: Server;
  let issuer: string;
  /** The claims the next ID token carries (besides iss, aud, sub, nonce and times). */
  let nextClaims: Record<string, unknown> = {};
  let nonce = '';

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', use: 'sig', alg: 'RS256' };
    server = createServer((req, res) => {
      const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const path = new URL(req.url ?? '/', issuer).pathname;
      if (path === '/.well-known/openid-configuration') {
        return json({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic'],
        });
      }
      if (path === '/jwks') return json({ keys: [jwk] });
      if (path === '/token') {
        req.resume();
        req.on('end', () => {
          void new SignJWT({ nonce, ...nextClaims })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .setIssuer(issuer)
            .setAudience(CLIENT.id)
            .setSubject('person-1')
            .setIssuedAt()
            .setExpirationTime('5m')
            .sign(privateKey)
            .then((idToken) => json({ access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: idToken }));
        });
        return undefined;
      }
      return res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  const settings = (extra: Partial<OidcSettings> = {}): OidcSettings => ({ issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, allowedDomains: ['example.com'], ...extra });

  async function signIn(oidc: OidcSignIn, claims: Record<string, unknown>) {
    const { url, state } = await oidc.start(REDIRECT, '/');
    nonce = new URL(url).searchParams.get('nonce') ?? '';
    nextClaims = claims;
    return oidc.finish(new URL(`${REDIRECT}?code=c0de&state=${state.state}`), state);
  }

  it('signs in email_verified: true', async () => {
    await expect(signIn(new OidcSignIn(settings()), { email: 'alice@example.com', email_verified: true })).resolves.toMatchObject({ email: 'alice@example.com', verified: true });
  });

  it('refuses a missing, false or string email_verified', async () => {
    const oidc = new OidcSignIn(settings());
    for (const claim of [{}, { email_verified: false }, { email_verified: 'true' }]) {
      await expect(signIn(oidc, { email: 'alice@example.com', ...claim }), JSON.stringify(claim)).rejects.toThrow(SignInRefusedError);
    }
  });

  it('never lets a listed admin skip the domain check', async () => {
    await expect(signIn(new OidcSignIn(settings()), { email: 'root@elsewhere.org', email_verified: true })).rejects.toThrow(/may not sign in here/);
  });

  it('with the opt-out, lets a missing claim in as unverified (a viewer), and still refuses false', async () => {
    const oidc = new OidcSignIn(settings({ allowUnverifiedEmail: true }));
    await expect(signIn(oidc, { email: 'bob@example.com' })).resolves.toMatchObject({ email: 'bob@example.com', verified: false });
    await expect(signIn(oidc, { email: 'bob@example.com', email_verified: false })).rejects.toThrow(SignInRefusedError);
  });

  it('reads the opt-out from KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL', () => {
    const env = { KUROKO_OIDC_ISSUER: 'https://id.example.com', KUROKO_OIDC_CLIENT_ID: 'c', KUROKO_OIDC_CLIENT_SECRET: 's', KUROKO_OIDC_ALLOWED_DOMAINS: 'example.com', KUROKO_CONSOLE_SECRET: 'x'.repeat(40) };
    expect(readConsoleConfig(env, { localSignIn: 'never' }).oidc?.allowUnverifiedEmail).toBeUndefined();
    expect(readConsoleConfig({ ...env, KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL: 'true' }, { localSignIn: 'never' }).oidc?.allowUnverifiedEmail).toBe(true);
  });
});
