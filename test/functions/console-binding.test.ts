/**
 * The api's console configuration is built from the binding parseApiConfig checked plus the two secrets, without a
 * second pass through readConsoleConfig's environment rules; the two paths must still agree.
 */
import { describe, expect, it } from 'vitest';
import { consoleConfigFromBinding } from '../../http/console-binding';
import { readConsoleConfig } from '../../http/console/console-config';
import { parseApiConfig, type ApiConsoleBinding } from '../../app/config/config';
import { ENV_KEYS } from '../../app/config/env-keys';

const SIGNING_KEY = 'k'.repeat(64);
const CLIENT_SECRET = 'oidc-client-secret';
const baseEnv = {
  [ENV_KEYS.stage]: 'test',
  [ENV_KEYS.dbClusterArn]: 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko-test',
  [ENV_KEYS.dbSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-test-db-AbC123',
  [ENV_KEYS.dbName]: 'kuroko',
};
const consoleEnv = {
  [ENV_KEYS.consoleSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-console-key-AbC123',
  [ENV_KEYS.oidcIssuer]: ' https://accounts.example.com ',
  [ENV_KEYS.oidcClientId]: ' kuroko-console ',
  [ENV_KEYS.oidcClientSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/dev/oidc-client',
  [ENV_KEYS.oidcAllowedDomains]: '@Example.com, example.org *',
  [ENV_KEYS.consoleAdmins]: 'Boss@Example.com ops@example.org',
  [ENV_KEYS.baseUrl]: 'https://abcdef1234.execute-api.us-east-1.amazonaws.com//',
};

const bindingOf = (env: Record<string, string>): ApiConsoleBinding => {
  const binding = parseApiConfig({ ...baseEnv, ...env }).console;
  if (!binding) throw new Error('no console binding');
  return binding;
};

describe('consoleConfigFromBinding', () => {
  it('builds what readConsoleConfig builds from the same settings as environment variables', () => {
    const fromBinding = consoleConfigFromBinding(bindingOf(consoleEnv), { signingKey: ` ${SIGNING_KEY} `, clientSecret: ` ${CLIENT_SECRET}\n` });
    const fromEnv = readConsoleConfig(
      { ...consoleEnv, [ENV_KEYS.consoleSecret]: ` ${SIGNING_KEY} `, [ENV_KEYS.oidcClientSecret]: ` ${CLIENT_SECRET}\n` },
      { localSignIn: 'never' },
    );
    expect(fromBinding).toEqual(fromEnv);
    expect(fromBinding).toEqual({
      secret: SIGNING_KEY,
      oidc: {
        issuer: 'https://accounts.example.com',
        clientId: 'kuroko-console',
        clientSecret: CLIENT_SECRET,
        allowedDomains: ['example.com', 'example.org', '*'],
      },
      admins: ['boss@example.com', 'ops@example.org'],
      localSignIn: false,
      baseUrl: 'https://abcdef1234.execute-api.us-east-1.amazonaws.com',
    });
  });

  it('refuses a signing key shorter than readConsoleConfig allows, and an empty client secret', () => {
    const binding = bindingOf(consoleEnv);
    expect(() => consoleConfigFromBinding(binding, { signingKey: 'short', clientSecret: CLIENT_SECRET })).toThrow(/at least 32 characters/);
    expect(() => consoleConfigFromBinding(binding, { signingKey: SIGNING_KEY, clientSecret: ' \n' })).toThrow(/oidc-client is empty/);
  });

  it('refuses an empty signing key instead of making up one per container, naming both empty secrets at once', () => {
    const binding = bindingOf(consoleEnv);
    expect(() => consoleConfigFromBinding(binding, { signingKey: ' ', clientSecret: '' })).toThrow(/console-key-AbC123 is empty[\s\S]*oidc-client is empty/);
  });
});

describe('parseApiConfig with the console', () => {
  it('refuses an admin that is not an email address, next to the other console problems', () => {
    const { [ENV_KEYS.baseUrl]: _baseUrl, ...withoutBaseUrl } = consoleEnv;
    expect(() => parseApiConfig({ ...baseEnv, ...withoutBaseUrl, [ENV_KEYS.consoleAdmins]: 'ops@example.com nobody' })).toThrow(
      /KUROKO_BASE_URL: is required[\s\S]*KUROKO_CONSOLE_ADMINS: `nobody` is not an email address/,
    );
  });

  it('does not look at the admins while the console is off', () => {
    expect(parseApiConfig({ ...baseEnv, [ENV_KEYS.consoleAdmins]: 'nobody' }).console).toBeUndefined();
  });
});
