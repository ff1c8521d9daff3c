/**
 * AWS services the benches reach on loopback through AWS_ENDPOINT_URL (or a per-service AWS_ENDPOINT_URL_*), with
 * the real SDK clients: SSM holds one parameter (GetParameter reads it, PutParameter replaces it), Lambda accepts
 * invocations (records to which function, and hands each to `onInvoke`, as the service hands an asynchronous one to the function), SNS accepts
 * publishes, SQS keeps standard queues in memory (SendMessageBatch, long-polled ReceiveMessage, DeleteMessageBatch:
 * the doorbell's calls; a queue's URL is `<endpoint>/<account>/<name>`, which the SQS client uses as its endpoint),
 * and any other JSON call (CloudWatch Logs) gets an empty success, unless `failLogs` makes CloudWatch Logs answer
 * throttling or server errors (a sink failing while commands print). `latencyMs` delays every answer (a long poll's
 * answer too, after the message that ends it arrived), as a round trip to the service would.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const JSON_TYPE = 'application/x-amz-json-1.1';
const SQS_JSON_TYPE = 'application/x-amz-json-1.0';
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations/;

export interface FakeAwsOptions {
  /** Delay before every answer, in ms (0 by default). */
  latencyMs?: number;
  /** Called for each Lambda invocation the server accepted: the function name (as sent) and the parsed payload. */
  onInvoke?: (functionName: string, payload: unknown, invocationType: string) => void;
  /** Told of every answer as it is sent (benches build timelines from it): service, operation, wall-clock ms. */
  onCall?: (call: FakeAwsCall) => void;
}

/** One answered call: `operation` is the target (`AmazonSQS.SendMessageBatch`) or `Invoke <function>`. */
export interface FakeAwsCall {
  service: string;
  operation: string;
  startedAt: number;
  endedAt: number;
  /** ReceiveMessage: whether a message came. */
  received?: boolean;
}

export interface FakeAws {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** From now on, this share of CloudWatch Logs calls answers ThrottlingException (400) or a 500; 0 heals. */
  failLogs(rate: number): void;
  /** CloudWatch Logs calls answered with an error so far. */
  failedLogCalls(): number;
  /** The function names of the Lambda invocations received since the last call (and forgets them). */
  takeInvocations(): string[];
  /**
   * Replaces the SSM parameter's value (a value that names this server's endpoint): the one every name reads, or with
   * `name` that parameter's own (PutParameter writes a name's own value too).
   */
  setParameter(value: string, name?: string): void;
  /** Calls answered so far, by service (`lambda`, `sqs`, `ssm`, `logs`, `sns`, `other`). */
  calls(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

interface Waiter {
  take: (message: { body: string; handle: string; id: string } | undefined) => void;
}

/** In-memory SQS standard queues: a message goes to one receiver; long polls wait for one. */
function sqsQueues() {
  const queues = new Map<string, { messages: { body: string; id: string }[]; waiters: Waiter[] }>();
  const queueOf = (url: string) => {
    const key = new URL(url).pathname;
    let queue = queues.get(key);
    if (!queue) queues.set(key, (queue = { messages: [], waiters: [] }));
    return queue;
  };
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');
  const asMessage = (m: { body: string; id: string }) => ({ MessageId: m.id, ReceiptHandle: randomUUID(), Body: m.body, MD5OfBody: md5(m.body) });
  return {
    send(url: string, entries: { Id: string; MessageBody: string }[]) {
      const queue = queueOf(url);
      for (const entry of entries) {
        const message = { body: entry.MessageBody, id: randomUUID() };
        const waiter = queue.waiters.shift();
        if (waiter) waiter.take({ ...message, handle: randomUUID() });
        else queue.messages.push(message);
      }
      return { Successful: entries.map((e) => ({ Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: md5(e.MessageBody) })), Failed: [] };
    },
    async receive(url: string, waitSeconds: number, closed: Promise<void>) {
      const queue = queueOf(url);
      const ready = queue.messages.shift();
      if (ready) return { Messages: [asMessage(ready)] };
      if (waitSeconds <= 0) return {};
      const message = await new Promise<{ body: string; id: string } | undefined>((resolve) => {
        const waiter: Waiter = { take: resolve };
        queue.waiters.push(waiter);
        const timer = setTimeout(() => drop(), waitSeconds * 1000);
        // A receiver that went away (an aborted long poll) must not swallow the next message.
        const drop = () => {
          clearTimeout(timer);
          const i = queue.waiters.indexOf(waiter);
          if (i >= 0) queue.waiters.splice(i, 1);
          resolve(undefined);
        };
        waiter.take = (m) => {
          clearTimeout(timer);
          resolve(m);
        };
        void closed.then(drop);
      });
      return message ? { Messages: [asMessage(message)] } : {};
    },
    delete(entries: { Id: string }[]) {
      return { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] };
    },
  };
}

export async function startFakeAws(parameter: string, options: FakeAwsOptions = {}): Promise<FakeAws> {
  let value = parameter;
  const named = new Map<string, string>();
  let logsFailureRate = 0;
  let failedLogs = 0;
  let invocations: string[] = [];
  const latencyMs = options.latencyMs ?? 0;
  const counts: Record<string, number> = {};
  const sqs = sqsQueues();
  const wallNow = () => performance.timeOrigin + performance.now();
  const answer = (response: ServerResponse, service: string, send: () => void, call?: { operation: string; startedAt: number; received?: boolean }) => {
    counts[service] = (counts[service] ?? 0) + 1;
    const sent = () => {
      send();
      if (call) options.onCall?.({ service, ...call, endedAt: wallNow() });
    };
    if (latencyMs > 0) setTimeout(sent, latencyMs);
    else sent();
  };
  const server = createServer((request, response) => {
    const startedAt = wallNow();
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      if (String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        // SNS speaks the query protocol.
        answer(response, 'sns', () => {
          response.setHeader('content-type', 'text/xml');
          response.end('<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>');
        });
        return;
      }
      if (target.startsWith('AmazonSQS.')) {
        void serveSqs(target.slice('AmazonSQS.'.length), body, request.url ?? '/', response, startedAt);
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
      const invoked = INVOKE_PATH.exec(request.url ?? '');
      if (invoked) {
        const type = String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse');
        const functionName = decodeURIComponent(invoked[1]!);
        invocations.push(functionName);
        answer(
          response,
          'lambda',
          () => {
            response.statusCode = 202;
            response.end('{}');
          },
          { operation: `Invoke ${functionName}`, startedAt },
        );
        // Lambda queues an asynchronous event and answers 202; the function runs on its own.
        options.onInvoke?.(functionName, body === '' ? undefined : (JSON.parse(body) as unknown), type);
        return;
      }
      const service = target.startsWith('AmazonSSM.') ? 'ssm' : target.startsWith('Logs_') ? 'logs' : 'other';
      answer(response, service, () => {
        const input = (body === '' ? {} : JSON.parse(body)) as { Name?: string; Value?: string };
        if (target === 'AmazonSSM.GetParameter') {
          response.end(JSON.stringify({ Parameter: { Value: (input.Name !== undefined ? named.get(input.Name) : undefined) ?? value, Type: 'String' } }));
        } else if (target === 'AmazonSSM.PutParameter') {
          if (input.Name !== undefined) named.set(input.Name, String(input.Value));
          else value = String(input.Value);
          response.end(JSON.stringify({ Version: 1 }));
        } else response.end('{}');
      });
    });
  });

  async function serveSqs(operation: string, body: string, path: string, response: ServerResponse, startedAt: number): Promise<void> {
    const input = JSON.parse(body || '{}') as { QueueUrl?: string; Entries?: { Id: string; MessageBody: string }[]; WaitTimeSeconds?: number };
    const url = input.QueueUrl ?? `http://localhost${path}`;
    let result: unknown = {};
    if (operation === 'SendMessageBatch') result = sqs.send(url, input.Entries ?? []);
    else if (operation === 'SendMessage') result = sqs.send(url, [{ Id: '0', MessageBody: (input as { MessageBody: string }).MessageBody }]);
    else if (operation === 'ReceiveMessage') {
      const closed = new Promise<void>((resolve) => response.once('close', () => resolve()));
      result = await sqs.receive(url, input.WaitTimeSeconds ?? 0, closed);
    } else if (operation === 'DeleteMessageBatch') result = sqs.delete(input.Entries ?? []);
    if (response.destroyed) return;
    const received = operation === 'ReceiveMessage' ? { received: ((result as { Messages?: unknown[] }).Messages ?? []).length > 0 } : {};
    answer(
      response,
      'sqs',
      () => {
        response.setHeader('content-type', SQS_JSON_TYPE);
        response.end(JSON.stringify(result));
      },
      { operation, startedAt, ...received },
    );
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failLogs: (rate) => (logsFailureRate = rate),
    failedLogCalls: () => failedLogs,
    takeInvocations: () => {
      const taken = invocations;
      invocations = [];
      return taken;
    },
    setParameter: (next, name) => {
      if (name === undefined) value = next;
      else named.set(name, next);
    },
    calls: () => ({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
