/**
 * AWS services the benches reach on loopback through AWS_ENDPOINT_URL (or a per-service AWS_ENDPOINT_URL_*), with
 * the real SDK clients: SSM holds one parameter (GetParameter reads it, PutParameter replaces it), Lambda accepts
 * invocations (and records to which function), SNS accepts publishes, and any other JSON call (CloudWatch Logs) gets an empty success, unless
 * `failLogs` makes CloudWatch Logs answer throttling or server errors (a sink failing while commands print).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const JSON_TYPE = 'application/x-amz-json-1.1';

export interface FakeAws {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** From now on, this share of CloudWatch Logs calls answers ThrottlingException (400) or a 500; 0 heals. */
  failLogs(rate: number): void;
  /** CloudWatch Logs calls answered with an error so far. */
  failedLogCalls(): number;
  /** The function names of the Lambda invocations received since the last call (and forgets them). */
  takeInvocations(): string[];
  close(): Promise<void>;
}

export async function startFakeAws(parameter: string): Promise<FakeAws> {
  let value = parameter;
  let logsFailureRate = 0;
  let failedLogs = 0;
  let invoked: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      if (String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        // SNS speaks the query protocol.
        response.setHeader('content-type', 'text/xml');
        response.end('<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>');
        return;
      }
      response.setHeader('content-type', JSON_TYPE);
      if (target.startsWith('Logs_') && Math.random() < logsFailureRate) {
        failedLogs++;
        const throttled = Math.random() < 0.5;
        response.statusCode = throttled ? 400 : 500;
        response.setHeader('x-amzn-errortype', throttled ? 'ThrottlingException' : 'ServiceUnavailableException');
        response.end(JSON.stringify({ __type: throttled ? 'ThrottlingException' : 'ServiceUnavailableException', message: 'Rate exceeded' }));
        return;
      }
      if (request.url?.endsWith('/invocations')) {
        response.statusCode = 202;
        invoked.push(decodeURIComponent(/\/functions\/([^/]+)\/invocations/.exec(request.url)?.[1] ?? ''));
      }
      if (target === 'AmazonSSM.GetParameter') response.end(JSON.stringify({ Parameter: { Value: value, Type: 'String' } }));
      else if (target === 'AmazonSSM.PutParameter') {
        value = (JSON.parse(body) as { Value: string }).Value;
        response.end(JSON.stringify({ Version: 1 }));
      } else response.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failLogs: (rate) => (logsFailureRate = rate),
    failedLogCalls: () => failedLogs,
    takeInvocations: () => {
      const taken = invoked;
      invoked = [];
      return taken;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
