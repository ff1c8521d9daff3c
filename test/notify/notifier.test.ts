import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { createSnsChannel } from '../../adapters/aws/sns-channel';
import { EVENT_TYPE, type EventRecord, type EventType } from '../../core/model';
import { deliveryKeyOf, type Delivery, type NotificationChannel } from '../../core/notify/notification-channel';
import { CHANNEL_KIND, type ChannelKind } from '../../core/notify/notification-rules';
import { runNotifierPass, type NotifierSettings, type NotifierStore } from '../../core/services/notifier-service';
import type { IdGenerator } from '../../core/ports';
import { fromDbTime } from '../../db/column-codec';
import { createIdGenerator } from '../../db/id-generator';
import { EventDeliveryRepository } from '../../db/repositories/event-delivery-repository';
import { insertEvents } from '../../db/repositories/log-event-writer';
import type { Database } from '../../db/schema';
import { createSlackChannel, createWebhookChannel, deliveryUuid } from '../../adapters/channels/notification-channels';
import { insertDefinition, runUntilIdle, servicesFor } from '../helpers/engine-fixtures';
import { FakeClock } from '../helpers/in-memory-store';
import { NOTIFIER_POLICY } from '../../app/passes';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

const links = { baseUrl: 'http://kuroko.test' };
const SECRET = 'webhook-secret';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A real HTTP receiver on loopback that answers with `respond(n)` for its n-th request (1-based). */
async function startReceiver(respond: (n: number) => number = () => 200): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = respond(received.length + 1);
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status === 200 ? 'ok' : 'boom');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, received, server };
}

/** A channel that records what it was asked to send, and can fail or hang on demand. */
class RecordingChannel implements NotificationChannel {
  readonly sent: Delivery[] = [];
  behaviour: (n: number) => 'ok' | 'throw' | 'hang' = () => 'ok';
  constructor(
    readonly name = 'recording',
    readonly kind: ChannelKind = CHANNEL_KIND.console,
  ) {}
  async send(delivery: Delivery): Promise<void> {
    const what = this.behaviour(this.sent.length + 1);
    if (what === 'hang') return new Promise<void>(() => undefined);
    this.sent.push(delivery);
    if (what === 'throw') throw new Error('channel down');
  }
  keys(): string[] {
    return this.sent.map((d) => d.deliveryKey);
  }
}

async function insertSyntheticEvents(db: Kysely<Database>, ids: IdGenerator, count: number, at: Date, type: EventType = EVENT_TYPE.launch): Promise<EventRecord[]> {
  const events: EventRecord[] = [];
  for (let i = 0; i < count; i++) {
    events.push({ id: await ids.nextId(), type, instanceId: 10_000 + i, definitionId: 1, tokenId: null, message: `event ${i}`, createdAt: at });
  }
  await insertEvents(db, events);
  return events;
}

async function deliveryRows(db: Kysely<Database>) {
  return db.selectFrom('event_deliveries').selectAll().orderBy('event_id').execute();
}

/** The real store, noting which events it was asked to read log lines for. */
class LogCountingStore extends EventDeliveryRepository {
  readonly logRequests: number[][] = [];
  override loadRecentLogs(events: readonly EventRecord[], lines: number) {
    this.logRequests.push(events.map((e) => e.id));
    return super.loadRecentLogs(events, lines);
  }
}

const FAST: Partial<NotifierSettings> = { backoffBaseMs: 1_000, backoffCapMs: 4_000, claimTimeoutMs: 60_000, sendTimeoutMs: 5_000, concurrency: 1 };

describeEachDialect('notifier', (dialect) => {
  let tdb: TestDatabase;
  let clock: FakeClock;
  const servers: Server[] = [];
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
    clock = new FakeClock(new Date('2026-02-01T00:00:00.000Z'));
  });
  afterEach(async () => {
    await tdb.close();
    for (const s of servers.splice(0)) s.close();
  });

  const passWith = (
    channels: NotificationChannel[],
    settings: Partial<NotifierSettings> = FAST,
    store: NotifierStore = new EventDeliveryRepository(tdb.db),
    ids: IdGenerator = tdb.idGenerator,
  ) => runNotifierPass({ store, channels, clock, ids, settings });

  it('retries a failing webhook with backoff until it answers, reaching it once, signed, with one stable id', async () => {
    const receiver = await startReceiver((n) => (n <= 3 ? 500 : 200));
    servers.push(receiver.server);
    const services = servicesFor(tdb, { clock });
    await insertDefinition(tdb.db, 1, 'execute: flaky\n', { name: 'Flaky job', webhookUrl: receiver.url });
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'alice' });
    await runUntilIdle(services, () => 2);
    const webhook = createWebhookChannel({ links, secret: SECRET, timeoutMs: 5_000 });

    const first = await passWith([webhook]);
    // launch is not carried without "notify all events"; failure is.
    expect(first).toMatchObject({ claimed: 1, skipped: 1, retried: 1, delivered: 0 });
    expect(receiver.received).toHaveLength(1);
    // Not due yet: nothing is sent again before the backoff passes.
    expect(await passWith([webhook])).toMatchObject({ claimed: 0 });
    const delays: number[] = [];
    for (let i = 0; i < 10 && receiver.received.at(-1)?.status !== 200; i++) {
      const row = (await deliveryRows(tdb.db)).find((r) => r.status === 'pending')!;
      const due = fromDbTime(row.next_attempt_at);
      delays.push(due.getTime() - clock.now().getTime());
      clock.set(due);
      await passWith([webhook]);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000]);
    expect(receiver.received.map((r) => r.status)).toEqual([500, 500, 500, 200]);

    const failureEvent = await tdb.db.selectFrom('events').select('id').where('type', '=', 'failure').executeTakeFirstOrThrow();
    const ids = new Set(receiver.received.map((r) => r.headers['x-kuroko2-id']));
    expect([...ids]).toEqual([deliveryUuid(deliveryKeyOf(Number(failureEvent.id), 'webhook'))]);
    for (const r of receiver.received) {
      const expectedSignature = `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`;
      expect(r.headers['x-kuroko2-signature']).toBe(expectedSignature);
      expect(r.headers['user-agent']).toBe('Kuroko2-Webhook');
      expect(r.headers['content-type']).toBe('application/json');
    }
    const body = JSON.parse(receiver.received[3]!.body);
    expect(body).toMatchObject({
      action: 'notify_failure',
      level: 'FAILURE',
      subject: "Failed to execute 'Flaky job'",
      job_instance: { id: instance.id, url: `http://kuroko.test/definitions/1/instances/${instance.id}` },
      job_definition: { id: 1, name: 'Flaky job' },
    });
    expect(body.message).toContain('returns 2');

    const rows = await deliveryRows(tdb.db);
    expect(rows.map((r) => [r.status, Number(r.attempts)])).toEqual(
      expect.arrayContaining([
        ['skipped', 0],
        ['delivered', 4],
      ]),
    );
    expect(await passWith([webhook])).toMatchObject({ claimed: 0 });
    clock.advance(3_600_000);
    expect(await passWith([webhook])).toMatchObject({ claimed: 0 });
    expect(receiver.received).toHaveLength(4);
  });

  it('publishes failures and monitor alerts to SNS with subject, body and filterable attributes; Slack gets the chat ones', async () => {
    const sns = mockClient(SNSClient);
    try {
      sns.on(PublishCommand).rejectsOnce(new Error('throttled')).resolves({ MessageId: 'm-1' });
      const slackReceiver = await startReceiver();
      servers.push(slackReceiver.server);
      const services = servicesFor(tdb, { clock });
      await insertDefinition(tdb.db, 1, 'execute: broken\n', { name: 'Report' });
      await tdb.db.updateTable('job_definitions').set({ slack_channel: '#ops' }).where('id', '=', 1).execute();
      const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'bob' });
      await runUntilIdle(services, () => 1);
      const missed: EventRecord = { id: await tdb.idGenerator.nextId(), type: EVENT_TYPE.missedSlot, instanceId: null, definitionId: 1, tokenId: null, message: 'The slot of `0 * * * *` at 2026-02-01T00:00:00.000Z was missed.', createdAt: clock.now() };
      await insertEvents(tdb.db, [missed]);

      const channels = [
        createSnsChannel({ client: new SNSClient({ region: 'us-east-1' }), topicArn: 'arn:aws:sns:us-east-1:123456789012:alerts', links }),
        createSlackChannel({ links, webhookUrl: slackReceiver.url }),
      ];
      await passWith(channels);
      clock.advance(10_000);
      await passWith(channels);

      const calls = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
      const delivered = calls.slice(1);
      expect(delivered.map((c) => c.MessageAttributes?.event?.StringValue).sort()).toEqual(['failure', 'missed_slot']);
      const failure = delivered.find((c) => c.MessageAttributes?.event?.StringValue === 'failure')!;
      expect(failure.TopicArn).toBe('arn:aws:sns:us-east-1:123456789012:alerts');
      expect(failure.Subject).toBe("[CRITICAL] Failed to execute 'Report' on kuroko");
      expect(failure.MessageAttributes).toMatchObject({
        level: { DataType: 'String', StringValue: 'FAILURE' },
        job_definition_id: { DataType: 'Number', StringValue: '1' },
        job_instance_id: { DataType: 'Number', StringValue: String(instance.id) },
      });
      expect(failure.Message).toContain(`http://kuroko.test/definitions/1/instances/${instance.id}`);
      expect(failure.Message).toContain('Launched by bob');
      expect(failure.Message).toContain('What to do next');
      // The throttled publish was retried with the very same content.
      const retried = delivered.find((c) => c.MessageAttributes?.event?.StringValue === calls[0]!.MessageAttributes?.event?.StringValue);
      expect(retried).toEqual(calls[0]);

      expect(slackReceiver.received).toHaveLength(1);
      const slack = JSON.parse(slackReceiver.received[0]!.body);
      expect(slack).toMatchObject({ channel: '#ops', link_names: 1, attachments: [{ title: "[FAILURE] Failed to execute 'Report'", color: 'danger' }] });
      const statuses = (await deliveryRows(tdb.db)).map((r) => `${r.channel}:${r.status}`).sort();
      expect(statuses).toEqual([
        'slack:delivered',
        'slack:skipped',
        'slack:skipped',
        'sns:delivered',
        'sns:delivered',
        'sns:skipped',
      ]);
    } finally {
      sns.restore();
    }
  });

  it('reads log lines only for the events a claimed delivery shows them in (the mail-like channel)', async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n');
    const launches = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 3, clock.now(), EVENT_TYPE.launch);
    const failures = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 2, clock.now(), EVENT_TYPE.failure);
    const consoleOnly = new LogCountingStore(tdb.db);
    const terminal = new RecordingChannel('terminal', CHANNEL_KIND.console);
    await passWith([terminal], FAST, consoleOnly);
    expect(terminal.sent).toHaveLength(launches.length + failures.length);
    expect(consoleOnly.logRequests).toEqual([]);

    const withMail = new LogCountingStore(tdb.db);
    const mail = new RecordingChannel('mail', CHANNEL_KIND.sns);
    await passWith([mail], FAST, withMail);
    expect(mail.sent.map((d) => d.input.event.type)).toEqual([EVENT_TYPE.failure, EVENT_TYPE.failure]);
    expect(withMail.logRequests.map((ids) => [...ids].sort())).toEqual([failures.map((e) => e.id).sort()]);
  });

  it('reports a full batch only when a read came back full, so a busy server runs it again at once only then', async () => {
    await insertSyntheticEvents(tdb.db, tdb.idGenerator, 5, clock.now());
    const channel = new RecordingChannel();
    const full = await passWith([channel], { ...FAST, batchSize: 3 });
    expect(full).toMatchObject({ claimed: 3, fullBatches: 1 });
    expect(NOTIFIER_POLICY.more(full)).toBe(true);
    const rest = await passWith([channel], { ...FAST, batchSize: 3 });
    expect(rest).toMatchObject({ claimed: 2, fullBatches: 0 });
    expect(NOTIFIER_POLICY.more(rest)).toBe(false);
  });

  it('loses nothing and re-sends nothing marked delivered when a notifier hangs mid-batch and a new one takes over', async () => {
    const events = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 8, clock.now());
    const stuck = new RecordingChannel();
    stuck.behaviour = (n) => (n <= 3 ? 'ok' : 'hang');
    void passWith([stuck]).catch(() => undefined);
    await waitFor(async () => (await deliveryRows(tdb.db)).filter((r) => r.status === 'delivered').length === 3, { description: 'three deliveries marked' });
    const deliveredBefore = stuck.keys();

    // The first notifier is gone (its pass never ends). A new one takes over once the claims expire.
    const other = tdb.openAnother();
    try {
      const fresh = new RecordingChannel();
      const store = new EventDeliveryRepository(other.db);
      expect(await passWith([fresh], FAST, store)).toMatchObject({ claimed: 0 });
      clock.advance(FAST.claimTimeoutMs! + 1);
      await passWith([fresh], FAST, store);
      const all = events.map((e) => deliveryKeyOf(e.id, 'recording'));
      expect(fresh.keys().sort()).toEqual(all.filter((k) => !deliveredBefore.includes(k)).sort());
      expect([...deliveredBefore, ...fresh.keys()].sort()).toEqual(all.sort());
      const rows = await deliveryRows(tdb.db);
      expect(rows.every((r) => r.status === 'delivered')).toBe(true);
      expect(rows).toHaveLength(8);
    } finally {
      await other.close();
    }
  });

  it('re-sends with the same delivery key when a notifier dies after sending but before marking (the at-least-once edge)', async () => {
    const [event] = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 1, clock.now());
    const channel = new RecordingChannel();
    const repository = new EventDeliveryRepository(tdb.db);
    const dying: NotifierStore = Object.assign(Object.create(repository) as EventDeliveryRepository, {
      markDelivered: async () => {
        throw new Error('process killed');
      },
    });
    await expect(passWith([channel], FAST, dying)).rejects.toThrow('process killed');
    clock.advance(FAST.claimTimeoutMs! + 1);
    await passWith([channel]);
    expect(channel.keys()).toEqual([deliveryKeyOf(event!.id, 'recording'), deliveryKeyOf(event!.id, 'recording')]);
    expect(channel.sent.map((d) => d.attempt)).toEqual([1, 2]);
    clock.advance(FAST.claimTimeoutMs! + 1);
    await passWith([channel]);
    expect(channel.sent).toHaveLength(2);
  });

  it('marks a sent delivery again when the first mark fails on a transient error, so it is not sent twice (npm run chaos scenario 2)', async () => {
    const [event] = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 1, clock.now());
    const channel = new RecordingChannel();
    const repository = new EventDeliveryRepository(tdb.db);
    let failures = 1;
    const flaky: NotifierStore = Object.assign(Object.create(repository) as EventDeliveryRepository, {
      markDelivered: async (id: number, at: Date) => {
        if (failures-- > 0) throw new Error('ServiceUnavailableError: Service unavailable');
        return repository.markDelivered(id, at);
      },
    });
    await passWith([channel], FAST, flaky);
    clock.advance(FAST.claimTimeoutMs! + 1);
    await passWith([channel]);
    expect(channel.keys()).toEqual([deliveryKeyOf(event!.id, 'recording')]);
  });

  it('delivers each event once when two notifiers run at the same time, for new events and for due retries', async () => {
    const events = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 30, clock.now());
    const other = tdb.openAnother();
    try {
      const a = new RecordingChannel();
      const b = new RecordingChannel();
      a.behaviour = () => 'throw';
      b.behaviour = () => 'throw';
      const storeA = new EventDeliveryRepository(tdb.db);
      const storeB = new EventDeliveryRepository(other.db);
      const idsB = createIdGenerator(other.db);
      const settings = { ...FAST, concurrency: 4 };
      await Promise.all([passWith([a], settings, storeA), passWith([b], settings, storeB, idsB)]);
      // Every first attempt was made exactly once between the two.
      expect([...a.keys(), ...b.keys()].sort()).toEqual(events.map((e) => deliveryKeyOf(e.id, 'recording')).sort());

      a.sent.length = 0;
      b.sent.length = 0;
      a.behaviour = () => 'ok';
      b.behaviour = () => 'ok';
      clock.advance(FAST.backoffBaseMs!);
      await Promise.all([passWith([a], settings, storeA), passWith([b], settings, storeB, idsB)]);
      expect([...a.keys(), ...b.keys()].sort()).toEqual(events.map((e) => deliveryKeyOf(e.id, 'recording')).sort());
      const rows = await deliveryRows(tdb.db);
      expect(rows.map((r) => [r.status, Number(r.attempts)])).toEqual(events.map(() => ['delivered', 2]));
    } finally {
      await other.close();
    }
  });

  it('gives a delivery up after the last attempt, keeping the error', async () => {
    await insertSyntheticEvents(tdb.db, tdb.idGenerator, 1, clock.now());
    const channel = new RecordingChannel();
    channel.behaviour = () => 'throw';
    const settings = { ...FAST, maxAttempts: 3 };
    for (let i = 0; i < 5; i++) {
      await passWith([channel], settings);
      clock.advance(FAST.backoffCapMs!);
    }
    expect(channel.sent).toHaveLength(3);
    const [row] = await deliveryRows(tdb.db);
    expect(row).toMatchObject({ status: 'failed', last_error: 'Error: channel down' });
  });

  it('does not replay history to a channel seen for the first time', async () => {
    const old = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 2, new Date(clock.now().getTime() - 3 * 3_600_000));
    const recent = await insertSyntheticEvents(tdb.db, tdb.idGenerator, 2, new Date(clock.now().getTime() - 60_000));
    const channel = new RecordingChannel();
    const result = await passWith([channel]);
    expect(result).toMatchObject({ claimed: 2, delivered: 2 });
    expect(channel.keys().sort()).toEqual(recent.map((e) => deliveryKeyOf(e.id, 'recording')).sort());
    const oldRows = await tdb.db.selectFrom('event_deliveries').select('id').where('event_id', 'in', old.map((e) => e.id)).execute();
    expect(oldRows).toEqual([]);
  });
});

describeEachDialect('notifier webhook against a dead address', (dialect) => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
  });
  afterAll(async () => {
    await tdb.close();
  });

  it('records the network error and schedules a retry', async () => {
    const clock = new FakeClock(new Date('2026-02-01T00:00:00.000Z'));
    const receiver = await startReceiver();
    const deadUrl = receiver.url;
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
    await insertDefinition(tdb.db, 1, 'noop:\n', { webhookUrl: deadUrl });
    await insertEvents(tdb.db, [{ id: await tdb.idGenerator.nextId(), type: EVENT_TYPE.failure, instanceId: 5, definitionId: 1, tokenId: null, message: 'x', createdAt: clock.now() }]);
    const result = await runNotifierPass({
      store: new EventDeliveryRepository(tdb.db),
      channels: [createWebhookChannel({ links, timeoutMs: 2_000 })],
      clock,
      ids: tdb.idGenerator,
      settings: FAST,
    });
    expect(result).toMatchObject({ claimed: 1, retried: 1 });
    const row = await tdb.db.selectFrom('event_deliveries').selectAll().executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
    expect(row.last_error).toMatch(/fetch failed|ECONNREFUSED/);
    expect(Number(row.attempts)).toBe(1);
    expect(fromDbTime(row.next_attempt_at).getTime()).toBeGreaterThan(clock.now().getTime());
  });
});
