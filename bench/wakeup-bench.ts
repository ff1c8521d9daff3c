/**
 * `npm run bench:wakeup`: W1 of issue 18 with separate processes. `kuroko server` (bin/kuroko.js, no in-process
 * agents) and one separate `kuroko agent` (the bundle `npm run build:agent` writes) on a fresh MariaDB database run
 * a definition of 50 sequential `execute: true` steps; the bench prints the median and p95 gap between one
 * execution's finish and the next one's start, read from the execution histories.
 *
 * The bench process only launches (through the engine services on the same database) and reads; it never nudges
 * the server or the agent, so what is measured is how the two separate processes learn of each other's work.
 * KUROKO_BENCH_ROUNDS runs the workflow that many times (default 3) and pools the gaps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
const ROUNDS = Number(process.env.KUROKO_BENCH_ROUNDS ?? 3);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function startProcess(name: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: () => string } {
  let output = '';
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: string) => (output = (output + chunk).slice(-4000));
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') console.error(`${name} exited (${code ?? signal}):\n${output}`);
  });
  return { child, log: () => output };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-bench-wakeup-'));
  const database = await createMysqlDatabase(MYSQL_URL);
  const handle = createDatabase(database.url);
  const children: ChildProcess[] = [];
  try {
    await migrateToLatest(handle.db);
    const agentBundle = await buildSelfHostedAgent(join(dir, 'agent'));
    const server = startProcess('kuroko server', ['bin/kuroko.js', 'server', '--port', '0', '--host', '127.0.0.1', '--log-dir', join(dir, 'server-logs')], {
      KUROKO_DATABASE_URL: database.url,
    });
    children.push(server.child);
    const agent = startProcess('kuroko agent', [agentBundle, '--log-dir', join(dir, 'agent-logs')], { KUROKO_DATABASE_URL: database.url });
    children.push(agent.child);
    await waitFor(async () => (await handle.db.selectFrom('workers').select('id').execute()).length > 0, {
      timeoutMs: 60_000,
      description: 'the agent to register',
    });

    const services = createEngineServices(handle);
    await insertDefinition(handle.db, 1, 'execute: true\n'.repeat(STEPS));
    const gaps: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const instanceId = (await services.operations.launch({ definitionId: 1, launchedBy: 'bench' })).instance.id;
      await waitFor(
        async () => (await handle.db.selectFrom('execution_histories').select('id').where('job_instance_id', '=', instanceId).execute()).length === STEPS,
        { timeoutMs: 600_000, intervalMs: 100, description: `${STEPS} steps of round ${round + 1}` },
      );
      const rows = await handle.db
        .selectFrom('execution_histories')
        .select(['started_at', 'finished_at'])
        .where('job_instance_id', '=', instanceId)
        .orderBy('started_at')
        .execute();
      for (let i = 1; i < rows.length; i++) {
        gaps.push(fromDbTime(rows[i]!.started_at!).getTime() - fromDbTime(rows[i - 1]!.finished_at).getTime());
      }
    }
    gaps.sort((a, b) => a - b);
    console.log(`W1, kuroko server + 1 separate agent on MariaDB, ${STEPS} sequential \`true\` steps x ${ROUNDS} rounds`);
    console.log(`gap from one finish to the next start: median ${percentile(gaps, 50)} ms, p95 ${percentile(gaps, 95)} ms (${gaps.length} gaps)`);
  } finally {
    for (const child of children) await stopProcess(child);
    await handle.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
