/**
 * The console's configuration on AWS: the binding parseApiConfig has already checked and normalised, plus the two
 * secrets the api reads from Secrets Manager. Only the secrets are checked here.
 */
import { ConfigError } from '../core/errors';
import { CONSOLE_ENV_KEYS, signingKeyProblems, type ConsoleConfig } from './console/console-config';
import type { ApiConsoleBinding } from '../app/config/config';

export interface ConsoleSecrets {
  /** The cookie signing key. */
  signingKey: string;
  /** The OpenID Connect client secret. */
  clientSecret: string;
}

/** The ConsoleConfig of the api; ConfigError when a secret does not do. */
export function consoleConfigFromBinding(binding: ApiConsoleBinding, secrets: ConsoleSecrets): ConsoleConfig {
  const secret = secrets.signingKey.trim();
  const clientSecret = secrets.clientSecret.trim();
  // Unlike a local server, a Lambda must not make up a key: each container would sign with its own.
  const problems = [
    ...(secret === '' ? [`${CONSOLE_ENV_KEYS.secret}: the secret ${binding.signingSecretArn} is empty`] : signingKeyProblems(secret)),
    ...(clientSecret === '' ? [`${CONSOLE_ENV_KEYS.oidcClientSecret}: the secret ${binding.oidcClientSecretArn} is empty`] : []),
  ];
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    secret,
    oidc: { issuer: binding.oidcIssuer, clientId: binding.oidcClientId, clientSecret, allowedDomains: [...binding.allowedDomains], ...(binding.allowUnverifiedEmail ? { allowUnverifiedEmail: true } : {}) },
    admins: [...binding.admins],
    // A Lambda has no terminal to print a one-time link to: OIDC is the only way in.
    localSignIn: false,
    baseUrl: binding.baseUrl,
  };
}
