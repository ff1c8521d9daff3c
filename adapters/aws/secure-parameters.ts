/**
 * Generated keys kept as SSM SecureString parameters (standard tier, AWS-managed aws/ssm key: neither is billed),
 * in place of Secrets Manager secrets at 0.40 USD a month each (issue 17). CloudFormation cannot create a
 * SecureString parameter, so the migrator creates each one at deploy time with PutParameter and Overwrite=false:
 * the first deploy generates the value, every later deploy (and a value an operator put there first) keeps it.
 * The value is never logged and never returned by this module.
 */
import { randomBytes } from 'node:crypto';
import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { awsErrorName, toExternalServiceError } from './aws-errors';

export const SECURE_PARAMETER = { created: 'created', kept: 'kept' } as const;
export type SecureParameterOutcome = (typeof SECURE_PARAMETER)[keyof typeof SECURE_PARAMETER];

/** A random key of `bytes` bytes as hex (alphanumeric, like Secrets Manager's excludePunctuation passwords). */
export const generateKey = (bytes: number): string => randomBytes(bytes).toString('hex');

/** Creates `name` as a standard SecureString holding `generate()` unless it exists; an existing value is kept. */
export async function ensureSecureParameter(
  client: SSMClient,
  name: string,
  generate: () => string,
  description: string,
): Promise<SecureParameterOutcome> {
  try {
    await client.send(
      new PutParameterCommand({ Name: name, Value: generate(), Type: 'SecureString', Tier: 'Standard', Overwrite: false, Description: description }),
    );
    return SECURE_PARAMETER.created;
  } catch (error) {
    if (awsErrorName(error) === 'ParameterAlreadyExists') return SECURE_PARAMETER.kept;
    // The SDK's message names the parameter and the error, never the value sent.
    throw toExternalServiceError('ssm', `PutParameter ${name}`, error);
  }
}
