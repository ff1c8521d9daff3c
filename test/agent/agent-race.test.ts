/**
 * Invariant 1 under contention: eight agents, each with its own connection pool, race over 2,000 executions on
 * MariaDB. Every execution must run exactly once, with attempt 1.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../db/connection';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { queueExecutions, testAgent, type TestAgent } from './agent-fixtures';

const AGENTS = 8;
const EXECUTIONS = 2_000;
const FIRST_ID = 100_000;

let tdb: TestDatabase;
let scratch: string;
const handles: DatabaseHandle[] = [];
const agents: TestAgent[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  scratch = mkdtempSync(join(tmpdir(), 'kuroko-race-'));
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.dispose()));
  await Promise.all(handles.map((h) => h.close()));
  await tdb?.close();
  rmSync(scratch, { recursive: true, force: true });
});

it(`runs each of ${EXECUTIONS} executions exactly once across ${AGENTS} racing agents`, { timeout: 180_000 }, async () => {
  const ranFile = join(scratch, 'ran.txt');
  // One short line per run, appended with O_APPEND: lines from concurrent commands never interleave.
  await queueExecutions(
    tdb.db,
    Array.from({ length: EXECUTIONS }, (_, i) => ({
      id: FIRST_ID + i,
      shell: `echo "$KUROKO2_JOB_INSTANCE_ID" >> '${ranFile}'; echo "$KUROKO2_JOB_INSTANCE_ID"`,
      env: { KUROKO2_JOB_INSTANCE_ID: String(FIRST_ID + i) },
    })),
  );
  for (let i = 0; i < AGENTS; i++) {
    const handle = tdb.openAnother();
    handles.push(handle);
    agents.push(testAgent(handle, { hostname: `racer-${i}`, slots: 2, pollIntervalMs: 20, heartbeatIntervalMs: 1_000 }));
  }
  await Promise.all(agents.map((a) => a.agent.start()));

  await waitFor(
    async () => {
      const row = await tdb.db
        .selectFrom('executions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('finished_at', 'is not', null)
        .executeTakeFirstOrThrow();
      return Number(row.n) === EXECUTIONS;
    },
    { timeoutMs: 170_000, intervalMs: 250, description: 'every execution to finish' },
  );

  const rows = await tdb.db.selectFrom('executions').select(['id', 'attempt', 'exit_status', 'output_head', 'worker_id']).execute();
  expect(rows).toHaveLength(EXECUTIONS);
  const bad = rows.filter((r) => Number(r.attempt) !== 1 || Number(r.exit_status) !== 0 || r.output_head !== `${Number(r.id)}\n`);
  expect(bad).toEqual([]);

  const ran = readFileSync(ranFile, 'utf8').trimEnd().split('\n').map(Number);
  expect(ran).toHaveLength(EXECUTIONS);
  expect(new Set(ran).size).toBe(EXECUTIONS);
  expect(Math.min(...ran)).toBe(FIRST_ID);
  expect(Math.max(...ran)).toBe(FIRST_ID + EXECUTIONS - 1);

  // Every agent took part (not a proof of fairness, but a race with one runner would prove nothing).
  const workers = new Set(rows.map((r) => Number(r.worker_id)));
  expect(workers.size).toBe(AGENTS);
});
