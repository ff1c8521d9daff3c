/** Reads configuration from SSM Parameter Store (the agent's JSON configuration on EC2). */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError, NotFoundError, errorMessage } from '../../core/errors';
import { awsErrorName, toExternalServiceError } from './aws-errors';

/** The value of a parameter (SecureString parameters decrypted). */
export async function readParameter(client: SSMClient, name: string): Promise<string> {
  let value: string | undefined;
  try {
    const output = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    value = output.Parameter?.Value;
  } catch (error) {
    if (awsErrorName(error) === 'ParameterNotFound') throw new NotFoundError('SSM parameter', name);
    throw toExternalServiceError('ssm', `GetParameter ${name}`, error);
  }
  if (value === undefined) throw new NotFoundError('SSM parameter value', name);
  return value;
}

/** The decoded JSON of a parameter; ConfigError when it is not JSON. */
export async function readJsonParameter(client: SSMClient, name: string): Promise<unknown> {
  const text = await readParameter(client, name);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError([`SSM parameter ${name} is not valid JSON: ${errorMessage(error)}`]);
  }
}
