import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { readJsonParameter, readParameter } from '../../adapters/aws/ssm-parameters';
import { ConfigError, ExternalServiceError, NotFoundError } from '../../core/errors';

const ssm = mockClient(SSMClient);
const client = new SSMClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

beforeEach(() => ssm.reset());

describe('SSM parameters', () => {
  it('reads a parameter with decryption and decodes its JSON', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: '/kuroko/p', Value: '{"queue":"batch"}' } });
    expect(await readJsonParameter(client, '/kuroko/p')).toEqual({ queue: 'batch' });
    expect(ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: '/kuroko/p', WithDecryption: true });
  });

  it('says NotFoundError for a missing parameter and ConfigError for bad JSON', async () => {
    ssm.on(GetParameterCommand, { Name: '/missing' }).rejects(new ParameterNotFound({ message: 'nope', $metadata: {} }));
    ssm.on(GetParameterCommand, { Name: '/bad' }).resolves({ Parameter: { Value: '{nope' } });
    await expect(readParameter(client, '/missing')).rejects.toBeInstanceOf(NotFoundError);
    await expect(readJsonParameter(client, '/bad')).rejects.toBeInstanceOf(ConfigError);
  });

  it('wraps other failures as ExternalServiceError', async () => {
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $fault: 'client' }));
    const error = await readParameter(client, '/p').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as ExternalServiceError).retryable).toBe(false);
  });
});
