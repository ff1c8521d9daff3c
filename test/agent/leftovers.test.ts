/**
 * What a dead agent leaves running: commands finished as lost (D10) whose detached process groups still run on
 * the host. A live agent on that host kills them, so a lost command does not run on beside its retry, and it
 * leaves alone every group that only looks like one (another instance's, one started after the loss, another
 * host's).
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { isProcessGroupAlive } from '../../agent/proc';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { AGENT_ENV, queueExecutions, testAgent, type TestAgent, killStrayGroups } from './agent-fixtures';

const HOST = 'leftover-host';
const SECOND = 1_000;

/** A detached `sleep 300` in its own process group (as the agent starts commands) carrying an instance id. */
function detachedSleep(instanceId: number): number {
  const child = spawn('/bin/bash', ['-c', 'sleep 300 & wait'], {
    detached: true,
    stdio: 'ignore',
    env: { ...AGENT_ENV, KUROKO2_JOB_INSTANCE_ID: String(instanceId) },
  });
  child.unref();
  return child.pid!;
}

describeEachDialect('leftovers of lost commands', (dialect) => {
  let tdb: TestDatabase;
  let agent: TestAgent | undefined;
  const groups: number[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    killStrayGroups(groups);
  });
  afterAll(async () => {
    await tdb?.close();
  });

  /** An archived execution of this host that was lost at `lostAt` (started, no exit status, no signal). */
  const archiveLost = (id: number, instanceId: number, pid: number, lostAt: Date, hostname = HOST) =>
    tdb.db
      .insertInto('execution_histories')
      .values({
        id,
        execution_id: id,
        job_instance_id: instanceId,
        job_definition_id: 1,
        token_id: id,
        queue: '@default',
        shell: 'sleep 300',
        hostname,
        worker_id: 1,
        pid,
        started_at: new Date(lostAt.getTime() - 60 * SECOND),
        finished_at: lostAt,
        exit_status: null,
        term_signal: null,
      })
      .execute();

  it('kills the groups of its host that lost commands left, and nothing that only looks like one', async () => {
    // The loss is recorded a few seconds after these groups started, as the monitor would after missed heartbeats.
    const lostAt = new Date(Date.now() + 5 * SECOND);
    const archived = detachedSleep(501);
    const current = detachedSleep(502);
    const otherInstance = detachedSleep(999);
    const startedAfterLoss = detachedSleep(504);
    const otherHost = detachedSleep(505);
    groups.push(archived, current, otherInstance, startedAfterLoss, otherHost);

    await archiveLost(40_001, 501, archived, lostAt);
    // Still in executions: the monitor finished it as lost and the processor has not archived it yet.
    await queueExecutions(tdb.db, [{ id: 40_002, shell: 'sleep 300', instanceId: 502 }]);
    await tdb.db
      .updateTable('executions')
      .set({ hostname: HOST, pid: current, attempt: 1, started_at: new Date(), finished_at: lostAt, lost_reason: 'worker_lost' })
      .where('id', '=', 40_002)
      .execute();
    await archiveLost(40_003, 503, otherInstance, lostAt);
    // Its pid was recorded for a command lost a minute before this process even started: a reused pid.
    await archiveLost(40_004, 504, startedAfterLoss, new Date(Date.now() - 60 * SECOND));
    await archiveLost(40_005, 505, otherHost, lostAt, 'another-host');

    agent = testAgent(tdb, { hostname: HOST, queues: ['nothing-queued'], leftoverCheckMs: 100, killGraceMs: 500 });
    await agent.agent.start();
    await waitFor(() => !isProcessGroupAlive(archived) && !isProcessGroupAlive(current), {
      timeoutMs: 20 * SECOND,
      description: 'the leftover groups of the lost commands to be killed',
    });
    // Several more checks pass; the look-alikes survive them all.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect([otherInstance, startedAfterLoss, otherHost].map(isProcessGroupAlive)).toEqual([true, true, true]);
  });

  it('does not look when told not to (EC2 workers, where systemd kills what a dead agent leaves)', async () => {
    const lostAt = new Date(Date.now() + 5 * SECOND);
    const leftover = detachedSleep(601);
    groups.push(leftover);
    await archiveLost(40_101, 601, leftover, lostAt);
    agent = testAgent(tdb, { hostname: HOST, queues: ['nothing-queued'], leftoverCheckMs: 0 });
    await agent.agent.start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(isProcessGroupAlive(leftover)).toBe(true);
  });
});
