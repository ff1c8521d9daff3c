import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../core/errors';
import { DELIVERY_STATUS } from '../../core/services/notifier-service';
import { ENV_KEYS, OUTBOX_METRIC } from '../../app/config/env-keys';
import { signWebhookBody } from '../../adapters/channels/notification-channels';
import type * as NotifierModule from '../../functions/notifier/handler';
import { insertDefinition, runUntilIdle, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, functionEnv, lambdaContext, NOTIFIER, scheduledEvent } from './function-fixtures';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:kuroko-test-alerts';
const BASE_URL = 'https://kuroko.example.test';
const WEBHOOK_SECRET = 'webhook-secret-1';
/** The generated key's SecureString parameter, as the CDK app names it (the notifier reads it at its first invocation). */
const WEBHOOK_KEY_PARAMETER = '/kuroko/test/webhook-signing-key';
const sns = mockClient(SNSClient);
const ssm = mockClient(SSMClient);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
let receiver: Server;
let tdb: TestDatabase;
let notifier: typeof NotifierModule;
let stdoutLines: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  tdb = await createTestDatabase('data-api');
  applyEnv(
    functionEnv(tdb, {
      [ENV_KEYS.alertTopicArn]: TOPIC,
      [ENV_KEYS.metricsNamespace]: OUTBOX_METRIC.namespace,
      [ENV_KEYS.baseUrl]: `${BASE_URL}/`,
      [ENV_KEYS.webhookSecretParameter]: WEBHOOK_KEY_PARAMETER,
    }),
  );
  ssm
    .on(GetParameterCommand, { Name: WEBHOOK_KEY_PARAMETER, WithDecryption: true })
    .rejectsOnce(new Error('AccessDeniedException'))
    .resolves({ Parameter: { Value: WEBHOOK_SECRET } });
  notifier = await import('../../functions/notifier/handler');
});
afterAll(async () => {
  await notifier?.runtime.close();
  await tdb?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});
beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
  stdoutLines = [];
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const lines = String(chunk).split('\n').filter((l) => l.trim() !== '');
    stdoutLines.push(...lines);
    // The metric lines are read by the assertions; everything else still reaches the terminal.
    return lines.every((l) => l.startsWith('{"_aws"')) ? true : write(chunk, ...(rest as []));
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const webhookUrl = () => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/kuroko`;

/** The EMF documents printed during the test. */
function emfDocuments(): Record<string, unknown>[] {
  return stdoutLines.flatMap((line) => {
    try {
      const doc = JSON.parse(line) as Record<string, unknown>;
      return '_aws' in doc ? [doc] : [];
    } catch {
      return [];
    }
  });
}

/** Launches `execute: false` and lets the command fail: the engine writes a launch and a failure event. */
async function failingInstance(definitionId: number): Promise<number> {
  const services = servicesFor(tdb);
  await insertDefinition(tdb.db, definitionId, 'execute: false\n', { webhookUrl: webhookUrl() });
  const { instance } = await services.operations.launch({ definitionId, launchedBy: 'test' });
  await runUntilIdle(services, () => 1);
  return instance.id;
}

const deliveriesOf = (channel: string) =>
  tdb.db.selectFrom('event_deliveries').select(['status', 'attempts', 'event_id']).where('channel', '=', channel).execute();

describe('notifier handler', () => {
  it('fails an invocation whose webhook key cannot be read, and reads it again on the next', async () => {
    await expect(notifier.handler({ nudge: true }, lambdaContext(NOTIFIER))).rejects.toThrow(/AccessDeniedException/);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
    // The next invocation reads the key again, and goes through.
    await expect(notifier.handler({ nudge: true }, lambdaContext(NOTIFIER))).resolves.toMatchObject({ stoppedBy: 'idle' });
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([
      { Name: WEBHOOK_KEY_PARAMETER, WithDecryption: true },
      { Name: WEBHOOK_KEY_PARAMETER, WithDecryption: true },
    ]);
  });

  it('publishes an outbox event to the alert topic once, posts the webhook, and reports the backlog drained', async () => {
    const instanceId = await failingInstance(1);
    const keyReads = ssm.commandCalls(GetParameterCommand).length;

    const first = await notifier.handler(scheduledEvent('kuroko-test-NotifierTick'), lambdaContext(NOTIFIER));
    expect(first).toMatchObject({ delivered: 2, retried: 0, failed: 0, backlog: 0, stoppedBy: 'idle' });

    const publishes = sns.commandCalls(PublishCommand);
    expect(publishes).toHaveLength(1);
    const input = publishes[0]!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC);
    expect(input.MessageAttributes).toEqual({
      event: { DataType: 'String', StringValue: 'failure' },
      level: { DataType: 'String', StringValue: 'FAILURE' },
      job_definition_id: { DataType: 'Number', StringValue: '1' },
      job_instance_id: { DataType: 'Number', StringValue: String(instanceId) },
    });
    // Links point at the configured base URL, without its trailing slash doubled.
    expect(input.Message).toContain(`${BASE_URL}/definitions/1`);
    expect(input.Message).not.toContain(`${BASE_URL}//`);

    expect(received).toHaveLength(1);
    const hook = received[0]!;
    // Signed with the key read from its secret, which was read once for all the invocations that follow.
    expect(hook.headers['x-kuroko2-signature']).toBe(signWebhookBody(hook.body, WEBHOOK_SECRET));
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(keyReads);
    expect(JSON.parse(hook.body)).toMatchObject({ action: 'notify_failure', level: 'FAILURE' });

    const [metric] = emfDocuments();
    expect(metric).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [
          { Namespace: OUTBOX_METRIC.namespace, Dimensions: [['Stage']], Metrics: [{ Name: OUTBOX_METRIC.name, Unit: 'Count' }] },
        ],
      },
      Stage: 'test',
      [OUTBOX_METRIC.name]: 0,
    });

    // A nudge with nothing new publishes nothing and posts nothing.
    sns.resetHistory();
    stdoutLines = [];
    const second = await notifier.handler({ nudge: true }, lambdaContext(NOTIFIER));
    expect(second).toMatchObject({ passes: 1, claimed: 0, delivered: 0, backlog: 0 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(received).toHaveLength(1);
    expect(emfDocuments().map((d) => d[OUTBOX_METRIC.name])).toEqual([0]);
  });

  it('keeps a failed publish in the backlog metric until a later attempt delivers it', async () => {
    sns.on(PublishCommand).rejects(new Error('Throttling: rate exceeded'));
    await failingInstance(2);
    const failed = await notifier.handler({ nudge: true }, lambdaContext(NOTIFIER));
    expect(failed).toMatchObject({ retried: 1, backlog: 1 });
    expect(emfDocuments().map((d) => d[OUTBOX_METRIC.name])).toEqual([1]);
    const pending = (await deliveriesOf('sns')).filter((d) => d.status === DELIVERY_STATUS.pending);
    expect(pending).toHaveLength(1);

    // The retry is due after the backoff: move it into the past instead of waiting.
    await tdb.db
      .updateTable('event_deliveries')
      .set({ next_attempt_at: new Date(Date.now() - 1_000) })
      .where('status', '=', DELIVERY_STATUS.pending)
      .execute();
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'message-2' });
    stdoutLines = [];
    const retried = await notifier.handler(scheduledEvent('kuroko-test-NotifierTick'), lambdaContext(NOTIFIER));
    expect(retried).toMatchObject({ delivered: 1, backlog: 0 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(emfDocuments().map((d) => d[OUTBOX_METRIC.name])).toEqual([0]);
    expect((await deliveriesOf('sns')).filter((d) => d.status === DELIVERY_STATUS.pending)).toEqual([]);
  });

  it('starts no pass when the invocation has too little time left for one send, and still reports the backlog', async () => {
    await failingInstance(3);
    const result = await notifier.handler({ nudge: true }, lambdaContext(NOTIFIER, () => 10_000));
    // Both events of the instance (launch and failure) are undecided: no channel has a row for them yet.
    expect(result).toMatchObject({ passes: 0, stoppedBy: 'time', backlog: 2 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(emfDocuments().map((d) => d[OUTBOX_METRIC.name])).toEqual([2]);

    const next = await notifier.handler({ nudge: true }, lambdaContext(NOTIFIER));
    expect(next).toMatchObject({ delivered: 2, backlog: 0 });
  });

  it('rejects an event that is neither a tick nor a nudge', async () => {
    await expect(notifier.handler({ nudge: 'yes' }, lambdaContext(NOTIFIER))).rejects.toBeInstanceOf(ValidationError);
  });
});
