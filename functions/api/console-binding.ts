/**
 * The console's configuration on AWS: the binding parseApiConfig has already checked and normalised, plus the two
 * secrets the api reads from Secrets Manager. Only the secrets are checked here.
 */
import { ConfigError } from '../../core/errors';
import { CONSOLE_ENV_KEYS, readConsoleConfig, type ConsoleConfig } from '../console/console-config';
import type { ApiConsoleBinding } from '../shared/config';

export interface ConsoleSecrets {
  /** The cookie signing key. */
  signingKey: string;
  /** The OpenID Connect client secret. */
  clientSecret: string;
}

/** The ConsoleConfig of the api; ConfigError when a secret does not do. */
export function consoleConfigFromBinding(binding: ApiConsoleBinding, secrets: ConsoleSecrets): ConsoleConfig {
  // Given the signing key alone, readConsoleConfig applies only the key's own rules (its minimum length), which stay
  // in one place that way.
  const { secret } = readConsoleConfig({ [CONSOLE_ENV_KEYS.secret]: secrets.signingKey }, { localSignIn: 'never' });
  const clientSecret = secrets.clientSecret.trim();
  if (clientSecret === '') throw new ConfigError([`${CONSOLE_ENV_KEYS.oidcClientSecret}: the secret ${binding.oidcClientSecretArn} is empty`]);
  return {
    secret,
    oidc: { issuer: binding.oidcIssuer, clientId: binding.oidcClientId, clientSecret, allowedDomains: [...binding.allowedDomains] },
    admins: [...binding.admins],
    // A Lambda has no terminal to print a one-time link to: OIDC is the only way in.
    localSignIn: false,
    baseUrl: binding.baseUrl,
  };
}
