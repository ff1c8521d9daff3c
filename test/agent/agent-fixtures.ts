/** Builders for agent tests: executions inserted straight into the queue, and an agent with test-speed timings. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { createAgent, type Agent, type AgentOptions } from '../../agent/agent';
import { startSpawner } from '../../agent/spawner';
import { FileLogSink } from '../../adapters/logs/file-log-sink';
import type { Execution } from '../../core/model';
import type { DatabaseHandle } from '../../db/connection';
import { toExecution } from '../../db/repositories/row-mappers';
import type { Database } from '../../db/schema';

/** SIGKILLs each process group a test left behind (detached commands outlive their agents) and empties the list. */
export function killStrayGroups(pgids: number[]): void {
  for (const pgid of pgids.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export const AGENT_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' };

export interface QueuedExecution {
  id: number;
  shell: string;
  queue?: string;
  env?: Record<string, string>;
  instanceId?: number;
  definitionId?: number;
}

/** Inserts unclaimed executions (token ids equal execution ids: the unique key holds). */
export async function queueExecutions(db: Kysely<Database>, executions: readonly QueuedExecution[], at = new Date()): Promise<void> {
  const BATCH = 500;
  for (let i = 0; i < executions.length; i += BATCH) {
    await db
      .insertInto('executions')
      .values(
        executions.slice(i, i + BATCH).map((e) => ({
          id: e.id,
          uuid: `uuid-${e.id}`,
          token_id: e.id,
          job_instance_id: e.instanceId ?? e.id,
          job_definition_id: e.definitionId ?? 1,
          queue: e.queue ?? '@default',
          shell: e.shell,
          env: JSON.stringify(e.env ?? {}),
          created_at: at,
          output_head: '',
          output_tail: '',
        })),
      )
      .execute();
  }
}

export async function executionRow(db: Kysely<Database>, id: number): Promise<Execution> {
  return toExecution(await db.selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
}

export interface TestAgent {
  agent: Agent;
  logSink: FileLogSink;
  logDir: string;
  /** Stops the agent (if running) and removes its log folder. */
  dispose(): Promise<void>;
}

/** An agent with fast polls, heartbeats and grace periods, writing logs to a temporary folder. */
export function testAgent(database: DatabaseHandle, options: Partial<AgentOptions> = {}): TestAgent {
  const logDir = mkdtempSync(join(tmpdir(), 'kuroko-agent-logs-'));
  const logSink = new FileLogSink(logDir);
  // KUROKO_TEST_SPAWNER=1 runs the agent suites with commands started as `kuroko dev` starts them (agent/spawner.ts).
  const spawner = process.env.KUROKO_TEST_SPAWNER === '1' && options.startCommand === undefined ? startSpawner({ logger: console }) : undefined;
  const agent = createAgent({
    ...(spawner !== undefined ? { startCommand: spawner.start } : {}),
    database,
    logSink,
    inheritEnv: AGENT_ENV,
    pollIntervalMs: 50,
    heartbeatIntervalMs: 200,
    killGraceMs: 1_000,
    drainGraceMs: 10_000,
    outputFlushMs: 100,
    ...options,
  });
  return {
    agent,
    logSink,
    logDir,
    async dispose() {
      await agent.stop('test over');
      await spawner?.close();
      await logSink.closeAll();
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}
