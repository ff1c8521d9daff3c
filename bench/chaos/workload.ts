/**
 * The chaos workload: definitions whose every command writes the ledger (ledger.ts), launches through the API with
 * idempotency keys (each key sent again after its answer, as a client that retries does), a cron definition, and
 * the harness playing the operator: failed steps retried, the step that always fails skipped. At the end, the
 * database's facts for the checker.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema';
import { insertDefinition } from '../../test/helpers/engine-fixtures';
import { checkLedger, markScript, type CheckResult } from './ledger';
import { isAlive, poll } from './processes';

/** Definition ids relative to a scenario's base. */
export const DEF = { main: 1, sub: 2, cron: 3, probe: 4, long: 5 } as const;
const HARNESS_RETRIES_PER_TOKEN = 6;

export interface Control {
  /** Launches; answers the instance id, or undefined when the call failed (send the same key again). */
  launch(definitionId: number, idempotencyKey?: string): Promise<number | undefined>;
  retry(instanceId: number, tokenId: number, definitionId: number): Promise<void>;
  skip(instanceId: number, tokenId: number, definitionId: number): Promise<void>;
}

export interface Workload {
  dir: string;
  ledgerPath: string;
  base: number;
  ids: number[];
  mark: string;
}

/** Writes mark.sh and an empty ledger under `dir`; definitions get ids base+1.. */
export function prepareWorkload(dir: string, base: number): Workload {
  mkdirSync(join(dir, 'state'), { recursive: true });
  const ledgerPath = join(dir, 'ledger');
  writeFileSync(ledgerPath, '');
  const mark = join(dir, 'mark.sh');
  writeFileSync(mark, markScript(ledgerPath, join(dir, 'state')));
  chmodSync(mark, 0o755);
  return { dir, ledgerPath, base, ids: Object.values(DEF).map((d) => base + d), mark };
}

/** The main job: forks, a parallel fork, an automatic retry, a sub-process, a wait, a step to retry and one to skip. */
export function mainScript(w: Workload): string {
  const m = w.mark;
  return [
    `execute: ${m} a ok`,
    'fork:',
    `  execute: ${m} f1 ok`,
    `  execute: ${m} f2 sleep:2`,
    'parallel_fork: 2',
    `  execute: ${m} p ok`,
    'retry: count=2 sleep_time=1',
    `  execute: ${m} r flaky`,
    `sub_process: ${w.base + DEF.sub}`,
    `wait: ${w.base + DEF.sub}/daily`,
    `execute: ${m} e flaky`,
    `execute: ${m} s fail`,
    `execute: ${m} z ok`,
    '',
  ].join('\n');
}

/** Inserts the scenario's definitions (the cron one launching every minute when `cron`). */
export async function seedDefinitions(
  db: Kysely<Database>,
  w: Workload,
  options: { webhookUrl?: string; cron?: boolean; longSeconds?: number; longQueue?: string; longMode?: 'sleep' | 'linger' } = {},
): Promise<void> {
  const common = { notifyAll: true, createdAt: new Date(), ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}) };
  await insertDefinition(db, w.base + DEF.sub, `execute: ${w.mark} sub ok\n`, common);
  await insertDefinition(db, w.base + DEF.main, mainScript(w), common);
  await insertDefinition(db, w.base + DEF.cron, `execute: ${w.mark} cron ok\n`, { ...common, ...(options.cron ? { crons: ['* * * * *'] } : {}) });
  await insertDefinition(db, w.base + DEF.probe, `execute: ${w.mark} probe ok\n`, common);
  const queue = options.longQueue ? `queue: ${options.longQueue}\n` : '';
  await insertDefinition(db, w.base + DEF.long, `${queue}execute: ${w.mark} long ${options.longMode ?? 'sleep'}:${options.longSeconds ?? 10}\n`, common);
}

/** Launches with a key until answered, then sends the same key once more (it must answer the same instance). */
export async function launchWithKey(control: Control, definitionId: number, key: string, timeoutMs = 120_000): Promise<number | undefined> {
  const id = await poll(() => control.launch(definitionId, key), timeoutMs, 500);
  if (id === undefined) return undefined;
  const again = await poll(() => control.launch(definitionId, key), timeoutMs, 500);
  if (again !== undefined && again !== id) throw new Error(`idempotency key ${key} answered ${id} then ${again}`);
  return id;
}

/** Launches `count` main instances spread over `spreadMs`, with keys `<scenario>-<i>`. */
export async function launchMains(control: Control, w: Workload, scenario: string, count: number, spreadMs: number): Promise<void> {
  const launches: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    launches.push(launchWithKey(control, w.base + DEF.main, `${scenario}-main-${i}`));
    await delay(spreadMs / count);
  }
  await Promise.all(launches);
}

/** The harness as operator, until every instance of the scenario finished or was canceled, or the deadline. */
export async function settle(db: Kysely<Database>, control: Control, w: Workload, timeoutMs: number): Promise<boolean> {
  const retries = new Map<number, number>();
  const settled = await poll(async () => {
    const open = await db
      .selectFrom('job_instances')
      .select(['id', 'job_definition_id'])
      .where('job_definition_id', 'in', w.ids)
      .where('finished_at', 'is', null)
      .where('canceled_at', 'is', null)
      .execute();
    if (open.length === 0) return true;
    const failed = await db
      .selectFrom('tokens')
      .select(['id', 'job_instance_id', 'job_definition_id'])
      .where('job_instance_id', 'in', open.map((o) => o.id))
      .where('status', '=', 'failure')
      .execute();
    for (const token of failed) {
      const last = await db
        .selectFrom('execution_histories')
        .select('shell')
        .where('token_id', '=', token.id)
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      const tries = retries.get(token.id) ?? 0;
      const act = / fail$/.test(last?.shell ?? '') || tries >= HARNESS_RETRIES_PER_TOKEN ? control.skip : control.retry;
      retries.set(token.id, tries + 1);
      await act(token.job_instance_id, token.id, token.job_definition_id).catch(() => undefined);
    }
    return false;
  }, timeoutMs, 1_000);
  return settled === true;
}

/** Seconds from now until a probe instance launched now has finished (the system is back to normal). */
export async function probeRecovery(db: Kysely<Database>, control: Control, w: Workload, key: string, timeoutMs = 180_000): Promise<number> {
  const started = performance.now();
  const id = await launchWithKey(control, w.base + DEF.probe, key, timeoutMs);
  if (id === undefined) return Number.NaN;
  const done = await poll(async () => {
    const row = await db.selectFrom('job_instances').select('finished_at').where('id', '=', id).executeTakeFirst();
    return row?.finished_at != null;
  }, timeoutMs, 200);
  return done ? (performance.now() - started) / 1000 : Number.NaN;
}

/** A webhook receiver that keeps every delivery id. */
export async function startWebhook(): Promise<{ url: string; deliveryIds: string[]; close(): Promise<void> }> {
  const deliveryIds: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = req.headers['x-kuroko2-id'];
      if (typeof id === 'string') deliveryIds.push(id);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    deliveryIds,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Reads the database's facts about the scenario's definitions and checks them against the ledger. */
export async function collectAndCheck(db: Kysely<Database>, w: Workload, deliveryIds: readonly string[]): Promise<CheckResult> {
  const instances = await db
    .selectFrom('job_instances')
    .select(['id', 'finished_at', 'canceled_at', 'idempotency_key'])
    .where('job_definition_id', 'in', w.ids)
    .execute();
  const ids = instances.map((i) => i.id);
  const tokens = ids.length ? await db.selectFrom('tokens').select(['job_instance_id', 'status']).where('job_instance_id', 'in', ids).execute() : [];
  const histories = ids.length
    ? await db.selectFrom('execution_histories').select(['job_instance_id', 'shell', 'exit_status']).where('job_instance_id', 'in', ids).execute()
    : [];
  const events = await db.selectFrom('events').select(['type', 'job_instance_id']).where('job_definition_id', 'in', w.ids).execute();
  const ledger = existsSync(w.ledgerPath) ? readFileSync(w.ledgerPath, 'utf8') : '';
  const pids = [...ledger.matchAll(/^S \S+ \S+ (\d+)/gm)].map((m) => Number(m[1]));
  return checkLedger({
    ledger,
    instances: instances.map((i) => ({
      id: i.id,
      finished: i.finished_at != null,
      canceled: i.canceled_at != null,
      idempotencyKey: i.idempotency_key,
      tokenStatuses: tokens.filter((t) => t.job_instance_id === i.id).map((t) => t.status),
    })),
    histories: histories.map((h) => ({ instanceId: h.job_instance_id, shell: h.shell, exitStatus: h.exit_status })),
    events: events.map((e) => ({ type: e.type, instanceId: e.job_instance_id })),
    deliveryIds,
    alivePids: new Set(pids.filter(isAlive)),
  });
}

/** The pids of every command the ledger saw start (to end them with the run). */
export function ledgerPids(w: Workload): number[] {
  const ledger = existsSync(w.ledgerPath) ? readFileSync(w.ledgerPath, 'utf8') : '';
  return [...ledger.matchAll(/^S \S+ \S+ (\d+)/gm)].map((m) => Number(m[1]));
}
