/**
 * Issue 13, finding 6 (webhooks): a 302 from a webhook receiver turned the POST into a GET to another loopback
 * server, a webhook could aim at the instance metadata service, and 300 characters of a failing reply were copied
 * into `last_error`. Real receivers on loopback, the real notifier pass over SQLite.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runNotifierPass } from '../../core/services/notifier-service';
import { EventDeliveryRepository } from '../../db/repositories/event-delivery-repository';
import { createWebhookChannel } from '../../adapters/channels/notification-channels';
import { isRefusedWebhookAddress } from '../../adapters/channels/webhook-address-guard';
import { insertDefinition, runUntilIdle, servicesFor } from '../helpers/engine-fixtures';
import { FakeClock } from '../helpers/in-memory-store';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const links = { baseUrl: 'http://kuroko.test' };
const SETTINGS = { backoffBaseMs: 1_000, backoffCapMs: 4_000, claimTimeoutMs: 60_000, sendTimeoutMs: 5_000, concurrency: 1 };

async function listen(handler: (method: string, res: ServerResponse) => void): Promise<{ url: string; hits: string[]; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push(req.method ?? '');
      handler(req.method ?? '', res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits, server };
}

describe('webhook delivery (sqlite)', () => {
  let tdb: TestDatabase;
  const servers: Server[] = [];
  const clock = new FakeClock(new Date('2026-02-01T00:00:00.000Z'));
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
  });
  afterEach(async () => {
    await tdb.close();
    for (const s of servers.splice(0)) s.close();
  });

  async function failWithWebhook(url: string): Promise<void> {
    const services = servicesFor(tdb, { clock });
    await insertDefinition(tdb.db, 1, 'execute: false\n', { name: 'Failing job', webhookUrl: url });
    await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    await runUntilIdle(services, () => 1);
  }

  const pass = (channel: ReturnType<typeof createWebhookChannel>) =>
    runNotifierPass({ store: new EventDeliveryRepository(tdb.db), channels: [channel], clock, ids: tdb.idGenerator, settings: SETTINGS });

  const lastErrors = async () =>
    (await tdb.db.selectFrom('event_deliveries').select('last_error').execute()).map((r) => r.last_error).filter((e): e is string => e !== null);

  it('does not follow a redirect: the POST never becomes a GET elsewhere, and the 302 is a failure', async () => {
    const elsewhere = await listen((_m, res) => res.writeHead(200).end('ok'));
    const redirecting = await listen((_m, res) => res.writeHead(302, { location: elsewhere.url }).end());
    servers.push(elsewhere.server, redirecting.server);
    await failWithWebhook(redirecting.url);
    const result = await pass(createWebhookChannel({ links }));
    expect(redirecting.hits).toEqual(['POST']);
    expect(elsewhere.hits).toEqual([]);
    expect(result).toMatchObject({ delivered: 0, retried: 1 });
    expect((await lastErrors()).join('\n')).toContain('answered 302');
  });

  it('records a failing reply by its status only, never its body', async () => {
    const failing = await listen((_m, res) => res.writeHead(500).end('internal secret: reply-body-token-7f3a'));
    servers.push(failing.server);
    await failWithWebhook(failing.url);
    await pass(createWebhookChannel({ links }));
    const errors = (await lastErrors()).join('\n');
    expect(errors).toContain('answered 500');
    expect(errors).not.toContain('reply-body-token');
  });

  it('refuses a host that resolves to the metadata service unless allowed, before sending anything', async () => {
    const receiver = await listen((_m, res) => res.writeHead(200).end('ok'));
    servers.push(receiver.server);
    const port = new URL(receiver.url).port;
    await failWithWebhook(`http://metadata.example.test:${port}/hook`);
    // The name resolves to the metadata address; the fetch would have gone to the loopback receiver.
    const toReceiver = (url: string, init: RequestInit) => fetch(receiver.url, init).then((r) => (void url, r));
    const guarded = createWebhookChannel({ links, resolve: async () => ['169.254.169.254'], fetch: toReceiver });
    await pass(guarded);
    expect(receiver.hits).toEqual([]);
    expect((await lastErrors()).join('\n')).toContain('link-local and metadata addresses are refused');

    const allowed = createWebhookChannel({ links, allowLinkLocal: true, resolve: async () => ['169.254.169.254'], fetch: toReceiver });
    clock.advance(60_000);
    await pass(allowed);
    expect(receiver.hits).toEqual(['POST']);
  });

  it('classifies link-local, metadata and unspecified addresses (v4, v6, IPv4-mapped)', () => {
    for (const address of ['169.254.169.254', '169.254.0.1', 'fd00:ec2::254', 'fe80::1', '::ffff:169.254.169.254', '0.0.0.0', '::', '100.100.100.200']) {
      expect(isRefusedWebhookAddress(address), address).toBe(true);
    }
    for (const address of ['127.0.0.1', '10.1.2.3', '192.168.0.10', '::1', '203.0.113.5']) expect(isRefusedWebhookAddress(address), address).toBe(false);
  });
});
