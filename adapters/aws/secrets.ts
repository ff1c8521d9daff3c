/** Reads secrets from Secrets Manager (the console's keys, the first admin API client). */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NotFoundError } from '../../core/errors';
import { awsErrorName, toExternalServiceError } from './aws-errors';

/** The string value of a secret, by ARN or name. */
export async function readSecretString(client: SecretsManagerClient, secretId: string): Promise<string> {
  let value: string | undefined;
  try {
    value = (await client.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException') throw new NotFoundError('secret', secretId);
    throw toExternalServiceError('secretsmanager', `GetSecretValue ${secretId}`, error);
  }
  if (value === undefined) throw new NotFoundError('secret string value', secretId);
  return value;
}
