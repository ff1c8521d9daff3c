import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchInstanceId } from '../../adapters/aws/instance-metadata';
import { ExternalServiceError } from '../../core/errors';

let server: Server | undefined;

/** A metadata service on loopback answering with `handler`; returns its endpoint. */
async function imds(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('fetchInstanceId', () => {
  it('takes an IMDSv2 session token, then reads the instance id with it', async () => {
    const seen: string[] = [];
    const endpoint = await imds((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      if (request.method === 'PUT' && request.url === '/latest/api/token') {
        expect(request.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('60');
        response.end('session-token');
      } else if (request.method === 'GET' && request.url === '/latest/meta-data/instance-id') {
        expect(request.headers['x-aws-ec2-metadata-token']).toBe('session-token');
        response.end('i-0123456789abcdef0\n');
      } else {
        response.statusCode = 404;
        response.end();
      }
    });
    await expect(fetchInstanceId({ endpoint })).resolves.toBe('i-0123456789abcdef0');
    expect(seen).toEqual(['PUT /latest/api/token', 'GET /latest/meta-data/instance-id']);
  });

  it('fails with the status when the service refuses the token', async () => {
    const endpoint = await imds((_request, response) => {
      response.statusCode = 403;
      response.end('no');
    });
    const error = await fetchInstanceId({ endpoint }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect(String((error as Error).message)).toContain('token request answered 403');
  });

  it('gives up after the timeout when the service does not answer', async () => {
    const endpoint = await imds(() => {});
    const started = Date.now();
    await expect(fetchInstanceId({ endpoint, timeoutMs: 100 })).rejects.toBeInstanceOf(ExternalServiceError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('fails when nothing listens', async () => {
    const endpoint = await imds(() => {});
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    await expect(fetchInstanceId({ endpoint })).rejects.toThrow(/cannot read the instance id/);
  });
});
