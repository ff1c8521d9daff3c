/**
 * Sign-in with OpenID Connect (Google, Cognito, Okta, ...): discovery from the issuer, the authorization code flow
 * with PKCE (S256), state and nonce kept in a short-lived signed cookie, and the ID token's signature verified
 * against the issuer's JWKS (openid-client's non-repudiation checks) besides its issuer, audience, expiry and
 * nonce. The person must have an email the provider marks `email_verified: true` whose domain (or Google's `hd`)
 * is allowed; global admins too (being listed never skips the domain check). A deployment whose provider never sends
 * the claim may let such people in as viewers (OidcSettings.allowUnverifiedEmail).
 */
import * as client from 'openid-client';
import { ANY_DOMAIN, type OidcSettings } from './console-config';
import { normalizeEmail } from '../../core/sign-in-rules';

export const OIDC_START_PATH = '/auth/oidc';
export { OIDC_CALLBACK_PATH } from '../../app/config/env-keys';

/** What the browser must bring back to the callback, kept in the signed sign-in state cookie. */
export interface SignInState {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

/** Who signed in, as the ID token says. */
export interface OidcIdentity {
  email: string;
  name: string;
  /** True when the provider said `email_verified: true`; admin rights need it. */
  verified: boolean;
}

/** A sign-in the console refuses (wrong domain, unverified email); the message is shown to the person. */
export class SignInRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignInRefusedError';
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The OpenID Connect client of the console; discovery runs once, on first use. */
export class OidcSignIn {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(private readonly settings: OidcSettings) {}

  private config(): Promise<client.Configuration> {
    this.configuration ??= (async () => {
      const issuer = new URL(this.settings.issuer);
      // Plain http only for a provider on this machine (tests, a local Keycloak); anything else must be https.
      const insecure = issuer.protocol === 'http:' && LOOPBACK_HOSTS.has(issuer.hostname);
      const config = await client.discovery(issuer, this.settings.clientId, this.settings.clientSecret, undefined, insecure ? { execute: [client.allowInsecureRequests] } : {});
      client.enableNonRepudiationChecks(config);
      return config;
    })().catch((error: unknown) => {
      // A provider that was down at the first try is asked again next time.
      this.configuration = undefined;
      throw error;
    });
    return this.configuration;
  }

  /** The provider's authorization URL and the state to keep in the browser until the callback. */
  async start(redirectUri: string, returnTo: string): Promise<{ url: string; state: SignInState }> {
    const config = await this.config();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state: { state, nonce, verifier, returnTo } };
  }

  /**
   * Redeems the code of a callback URL (with the redirect URI's origin and path) against the kept state; throws
   * SignInRefusedError when the person may not sign in, and openid-client's errors when the response is invalid.
   */
  async finish(callbackUrl: URL, kept: SignInState): Promise<OidcIdentity> {
    const config = await this.config();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: kept.verifier,
      expectedState: kept.state,
      expectedNonce: kept.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) throw new SignInRefusedError('the provider sent no ID token');
    let claims: Record<string, unknown> = idClaims;
    // Some providers (Okta, oidc-provider by default) keep profile and email claims out of the ID token when an
    // access token comes with it; the UserInfo endpoint has them, bound to the ID token's subject.
    if (typeof idClaims.email !== 'string' && tokens.access_token) {
      claims = { ...(await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)), ...idClaims };
    }
    const email = typeof claims.email === 'string' ? normalizeEmail(claims.email) : '';
    if (email === '') throw new SignInRefusedError('the provider did not share an email address; allow the email scope');
    // Only the boolean true counts: a missing claim, "true" as a string or anything else is not a verified email.
    const verified = claims.email_verified === true;
    if (!verified && (claims.email_verified !== undefined || !this.settings.allowUnverifiedEmail)) {
      throw new SignInRefusedError(`${email} is not verified at the provider (email_verified is not true)`);
    }
    const name = typeof claims.name === 'string' && claims.name.trim() !== '' ? claims.name.trim() : email;
    if (!this.allowed(email, typeof claims.hd === 'string' ? claims.hd : undefined)) {
      throw new SignInRefusedError(`${email} may not sign in here: its domain is not one of the allowed domains`);
    }
    return { email, name, verified };
  }

  private allowed(email: string, hd: string | undefined): boolean {
    const domains = this.settings.allowedDomains;
    if (domains.includes(ANY_DOMAIN)) return true;
    const domain = email.slice(email.lastIndexOf('@') + 1);
    return domains.includes(domain) || (hd !== undefined && domains.includes(hd.toLowerCase()));
  }
}
