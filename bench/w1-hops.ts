/**
 * `npx tsx bench/w1-hops.ts`: where W1's gap goes (issue 18). `kuroko server` (as bench/throughput-bench.ts runs it)
 * and a separate built agent on a fresh MariaDB database run 50 sequential `execute: true` steps; triggers on
 * `executions` stamp each write with MariaDB's clock (NOW(6)), so the hops are measured on one clock:
 * exit (the agent's finished_at) -> finish written -> next command queued (the processor's step) -> claimed ->
 * pid written, and the agent's started_at. Prints the median of each hop. The triggers cost a little themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { createEngineServices } from '../app/engine-services';
import { fromDbTime } from '../db/column-codec';
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import { buildSelfHostedAgent } from '../scripts/agent-bundle';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { waitFor } from '../test/helpers/wait-for';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const STEPS = 50;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const dir = mkdtempSync(join(tmpdir(), 'kuroko-w1-hops-'));
const scratch = await createMysqlDatabase(MYSQL_URL);
const handle = createDatabase(scratch.url);
const children: ChildProcess[] = [];
try {
  await migrateToLatest(handle.db);
  await sql`CREATE TABLE hop_log (execution_id BIGINT, what VARCHAR(16), at DATETIME(6))`.execute(handle.db);
  await sql.raw(`CREATE TRIGGER hop_insert AFTER INSERT ON executions FOR EACH ROW INSERT INTO hop_log VALUES (NEW.id, 'queued', NOW(6))`).execute(handle.db);
  await sql
    .raw(
      // The next command is written over the finished one's row (replaceExecutions' upsert): a new id is a queueing.
      `CREATE TRIGGER hop_update AFTER UPDATE ON executions FOR EACH ROW BEGIN
         IF OLD.id <> NEW.id THEN INSERT INTO hop_log VALUES (NEW.id, 'queued', NOW(6)); END IF;
         IF OLD.claimed_at IS NULL AND NEW.claimed_at IS NOT NULL THEN INSERT INTO hop_log VALUES (NEW.id, 'claimed', NOW(6)); END IF;
         IF OLD.pid IS NULL AND NEW.pid IS NOT NULL THEN INSERT INTO hop_log VALUES (NEW.id, 'pid', NOW(6)); END IF;
         IF OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL THEN INSERT INTO hop_log VALUES (NEW.id, 'finished', NOW(6)); END IF;
       END`,
    )
    .execute(handle.db);
  const bundle = await buildSelfHostedAgent(join(dir, 'build'));
  const start = (args: string[]) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') }, stdio: ['ignore', 'ignore', 'ignore'] });
    children.push(child);
  };
  start(['--import', 'tsx', join(ROOT, 'bench', 'throughput-profile.ts'), '--server', scratch.url, dir]);
  start([bundle, '--database-url', scratch.url, '--slots', '8', '--log-dir', join(dir, 'agent-logs')]);
  await waitFor(async () => (await handle.db.selectFrom('workers').select('id').execute()).length > 0, { timeoutMs: 60_000, description: 'the agent to register' });
  await insertDefinition(handle.db, 1, 'execute: true\n'.repeat(STEPS));
  const services = createEngineServices(handle);
  const instanceId = (await services.operations.launch({ definitionId: 1, launchedBy: 'bench' })).instance.id;
  await waitFor(async () => (await handle.db.selectFrom('execution_histories').select('id').where('job_instance_id', '=', instanceId).execute()).length === STEPS, {
    timeoutMs: 300_000,
    intervalMs: 100,
    description: 'the steps',
  });
  const histories = await handle.db.selectFrom('execution_histories').select(['execution_id', 'started_at', 'finished_at']).where('job_instance_id', '=', instanceId).orderBy('started_at').execute();
  const hops = await sql<{ execution_id: number; what: string; at: string }>`SELECT execution_id, what, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f') AS at FROM hop_log`.execute(handle.db);
  const at = new Map<string, number>();
  for (const h of hops.rows) at.set(`${Number(h.execution_id)}/${h.what}`, Date.parse(`${h.at.replace(' ', 'T').slice(0, 23)}Z`));
  const parts: Record<string, number[]> = { 'exit -> finish written': [], 'finish written -> next queued': [], 'queued -> claimed': [], 'claimed -> agent started_at': [], 'started_at -> pid written': [], 'exit -> next started_at (W1)': [] };
  for (let i = 1; i < histories.length; i++) {
    const prev = histories[i - 1]!;
    const next = histories[i]!;
    const p = Number(prev.execution_id);
    const n = Number(next.execution_id);
    const exit = fromDbTime(prev.finished_at).getTime();
    const started = fromDbTime(next.started_at!).getTime();
    parts['exit -> finish written']!.push(at.get(`${p}/finished`)! - exit);
    parts['finish written -> next queued']!.push(at.get(`${n}/queued`)! - at.get(`${p}/finished`)!);
    parts['queued -> claimed']!.push(at.get(`${n}/claimed`)! - at.get(`${n}/queued`)!);
    parts['claimed -> agent started_at']!.push(started - at.get(`${n}/claimed`)!);
    parts['started_at -> pid written']!.push(at.get(`${n}/pid`)! - started);
    parts['exit -> next started_at (W1)']!.push(started - exit);
  }
  for (const [name, values] of Object.entries(parts)) console.log(`${name.padEnd(32)} median ${median(values).toFixed(1)} ms`);
} finally {
  for (const child of children) {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
  await handle.close();
  await scratch.drop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
