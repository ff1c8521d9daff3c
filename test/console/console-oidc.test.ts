/**
 * OpenID Connect sign-in against a real provider (`oidc-provider`) served on loopback by this test, through real
 * Chromium: discovery, the code flow with PKCE, state and nonce, the ID token checked against the provider's JWKS,
 * the allowed-domain list (an outside domain is refused, a global admin from elsewhere too: test/security/).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsoleRepository } from '../../db/repositories/console-repository';
import type { EngineServices } from '../../app/engine-services';
import { createHttpApp } from '../../http/http-app';
import { recordingLogger } from '../api/api-fixtures';
import { servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { describeWithBrowser, launchBrowser, screenshot, type TestBrowser } from './browser-fixtures';

const CLIENT = { id: 'kuroko-console', secret: 'a-client-secret-for-tests' };

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describeWithBrowser('OpenID Connect sign-in', () => {
  let tdb: TestDatabase;
  let services: EngineServices;
  let providerServer: Server;
  let consoleServer: ServerType;
  let consoleUrl: string;
  let browser: TestBrowser;
  let page: Page;
  const logger = recordingLogger();

  beforeAll(async () => {
    // The provider's port must be known before the console starts (its issuer) and the console's before the provider
    // is built (the client's redirect URI): listen first, plug the provider in after.
    const plug: { handler?: (req: IncomingMessage, res: ServerResponse) => void } = {};
    providerServer = createServer((req, res) => (plug.handler ? plug.handler(req, res) : res.writeHead(503).end()));
    const issuer = `http://127.0.0.1:${await listen(providerServer)}`;

    tdb = await createTestDatabase('sqlite');
    services = servicesFor(tdb);
    const app = createHttpApp({
      services,
      logger,
      console: {
        config: {
          secret: 'another-console-secret-for-tests-0123456789',
          oidc: { issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, allowedDomains: ['example.com'] },
          admins: ['root@elsewhere.org'],
          localSignIn: false,
          baseUrl: undefined,
        },
      },
    });
    consoleServer = await new Promise<ServerType>((resolve) => {
      const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(server));
    });
    consoleUrl = `http://127.0.0.1:${(consoleServer.address() as AddressInfo).port}`;

    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT.id,
          client_secret: CLIENT.secret,
          redirect_uris: [`${consoleUrl}/auth/oidc/callback`],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key', use: 'sig', alg: 'RS256' }] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      pkce: { methods: ['S256'], required: () => true },
      cookies: { keys: ['provider-cookie-key-for-tests'] },
      // The dev login form takes any login; the login is the email of the person.
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, email: sub, email_verified: true, name: `Person ${sub.split('@')[0]}` }) }),
    });
    plug.handler = provider.callback();

    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => consoleServer?.close(resolve));
    await new Promise((resolve) => providerServer?.close(resolve));
    await tdb?.close();
  });

  async function signInAs(email: string): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${consoleUrl}/workers`);
    expect(new URL(page.url()).pathname).toBe('/sign_in');
    await page.click('a:has-text("Sign in with 127.0.0.1")');
    await page.fill('input[name=login]', email);
    await page.fill('input[name=password]', 'anything');
    await page.click('button:has-text("Sign-in")');
    await page.click('button:has-text("Continue")');
    // Back on the console: the page asked for, or the refusal at the callback.
    await page.waitForURL((url) => url.origin === consoleUrl);
  }

  it('signs in a person of an allowed domain as a viewer and returns to the page asked for', async () => {
    await signInAs('alice@example.com');
    expect(new URL(page.url()).pathname).toBe('/workers');
    await expect(page.locator('.who').textContent()).resolves.toContain('Person alice');
    await expect(page.locator('.who .role').textContent()).resolves.toBe('viewer');
    await screenshot(page, '20-oidc-signed-in');
    const user = await new ConsoleRepository(tdb.db, services.ids, services.clock).findUser('alice@example.com');
    expect(user?.name).toBe('Person alice');
  });

  it('refuses a person of another domain', async () => {
    await signInAs('mallory@evil.test');
    expect(new URL(page.url()).pathname).toBe('/auth/oidc/callback');
    await expect(page.locator('.flash-error').textContent()).resolves.toContain('mallory@evil.test may not sign in here');
    expect((await browser.context.cookies()).some((c) => c.name === 'kuroko_session')).toBe(false);
    await screenshot(page, '21-oidc-refused');
    const response = await page.goto(`${consoleUrl}/`);
    expect(new URL(page.url()).pathname).toBe('/sign_in');
    expect(response?.status()).toBe(200);
  });

  it('refuses a global admin from another domain: being listed never skips the domain check', async () => {
    await signInAs('root@elsewhere.org');
    expect(new URL(page.url()).pathname).toBe('/auth/oidc/callback');
    await expect(page.locator('.flash-error').textContent()).resolves.toContain('root@elsewhere.org may not sign in here');
    expect((await browser.context.cookies()).some((c) => c.name === 'kuroko_session')).toBe(false);
  });

  it('refuses a callback whose state was not started in this browser', async () => {
    const res = await fetch(`${consoleUrl}/auth/oidc/callback?code=forged&state=forged`);
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie') ?? '').not.toContain('kuroko_session=e');
  });
});
