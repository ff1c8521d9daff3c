/** What every scenario shares: its folder and workload, a webhook, and the conclusion (probe, settle, check). */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema';
import type { Mariadb } from './mariadb';
import { trackGroup, type Tracked } from './processes';
import type { ScenarioRow } from './report';
import { collectAndCheck, DEF, ledgerPids, prepareWorkload, probeRecovery, settle, startWebhook, type Control, type Workload } from './workload';

export interface Harness {
  root: string;
  mariadb: Mariadb;
  /** Progress lines (stderr), so a long run shows where it is. */
  log(message: string): void;
}

export interface Stage {
  name: string;
  dir: string;
  w: Workload;
  webhook: Awaited<ReturnType<typeof startWebhook>>;
  /** Agents started again after a failure (processes.ts, RestartOnFailure), for the report. */
  agentRestarts: number;
  /** Logs and counts an agent's restart: give it to every agent the scenario starts. */
  onAgentRestart(agent: Tracked, exit: string): void;
}

const SETTLE_MS = 150_000;
/** After everything settled: the notifier's last deliveries, and a window for a repeat to show. */
const DELIVERY_WATCH_MS = 4_000;

export async function openStage(harness: Harness, name: string, base: number): Promise<Stage> {
  const dir = join(harness.root, name.replace(/\W+/g, '-'));
  mkdirSync(dir, { recursive: true });
  const stage: Stage = {
    name,
    dir,
    w: prepareWorkload(dir, base),
    webhook: await startWebhook(),
    agentRestarts: 0,
    onAgentRestart(agent, exit) {
      stage.agentRestarts++;
      harness.log(`${name}: ${agent.name} restarted after it exited (${exit}): ${lastWords(agent)}`);
    },
  };
  return stage;
}

/** The end of a process's output on one line, for a log line. */
export function lastWords(process: Tracked): string {
  return process.output().slice(-400).replace(/\s+/g, ' ').trim() || '(no output)';
}

/**
 * After the fault ended: how long until a probe instance runs to its end, then the harness retries and skips until
 * every instance is done (the cron definition suspended first, so no new launch lands at the check), then checks.
 */
export async function conclude(harness: Harness, stage: Stage, db: Kysely<Database>, control: Control): Promise<ScenarioRow> {
  const recoverSeconds = await probeRecovery(db, control, stage.w, `${stage.name}-probe`);
  harness.log(`${stage.name}: recovered in ${recoverSeconds.toFixed(1)} s; settling`);
  await db.updateTable('job_definitions').set({ suspended: true }).where('id', '=', stage.w.base + DEF.cron).execute().catch(() => undefined);
  const settled = await settle(db, control, stage.w, SETTLE_MS);
  await delay(DELIVERY_WATCH_MS);
  const result = await collectAndCheck(db, stage.w, stage.webhook.deliveryIds);
  const open = await db
    .selectFrom('job_instances')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('job_definition_id', 'in', stage.w.ids)
    .where('finished_at', 'is', null)
    .where('canceled_at', 'is', null)
    .executeTakeFirst();
  if (!settled) harness.log(`${stage.name}: not every instance settled`);
  return { scenario: stage.name, recoverSeconds, unsettled: Number(open?.n ?? 0), agentRestarts: stage.agentRestarts, ...result };
}

/** Ends the stage: the webhook, and every command the ledger saw start. */
export async function closeStage(stage: Stage): Promise<void> {
  for (const pid of ledgerPids(stage.w)) trackGroup(pid);
  await stage.webhook.close();
}

export function randomBetween(min: number, max: number): number {
  return min + Math.random() * (max - min);
}
