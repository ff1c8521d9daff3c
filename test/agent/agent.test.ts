/**
 * The agent with real processes on the real MariaDB: exit statuses, output, kills through process_signals, lost
 * leases, suspension, drain, idle timeout, memory samples, and a whole workflow run by the engine plus this agent.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { ColumnNode, UpdateQueryNode, type KyselyPlugin } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { isPidAlive, isProcessGroupAlive } from '../../agent/proc';
import { fromDbTime } from '../../db/column-codec';
import type { DatabaseHandle } from '../../db/connection';
import { insertDefinition, servicesFor, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { executionRow, queueExecutions, testAgent, type TestAgent, killStrayGroups } from './agent-fixtures';

const WAIT = { timeoutMs: 20_000 };

describe('agent on MariaDB', () => {
  let tdb: TestDatabase;
  let handle: DatabaseHandle;
  let scratch: string;
  let nextId = 10_000;
  const agents: TestAgent[] = [];
  const strayGroups: number[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('mysql');
    handle = tdb.openAnother();
    scratch = mkdtempSync(join(tmpdir(), 'kuroko-agent-test-'));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.dispose()));
    killStrayGroups(strayGroups);
  });
  afterAll(async () => {
    await handle?.close();
    await tdb?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const startAgent = async (queue: string, options: Parameters<typeof testAgent>[1] = {}): Promise<TestAgent> => {
    const t = testAgent(handle, { queues: [queue], ids: tdb.idGenerator, ...options });
    agents.push(t);
    await t.agent.start();
    return t;
  };
  const queue = async (queueName: string, ...shells: string[]): Promise<number[]> => {
    const ids = shells.map(() => nextId++);
    await queueExecutions(tdb.db, shells.map((shell, i) => ({ id: ids[i] ?? 0, shell, queue: queueName })));
    return ids;
  };
  const finished = (id: number) =>
    waitFor(async () => {
      const e = await executionRow(tdb.db, id);
      return e.finishedAt ? e : undefined;
    }, { ...WAIT, description: `execution ${id} to finish` });
  const started = (id: number) =>
    waitFor(async () => {
      const e = await executionRow(tdb.db, id);
      return e.pid !== null ? e : undefined;
    }, { ...WAIT, description: `execution ${id} to get a pid` });
  const file = (name: string) => join(scratch, name);

  it('records exit statuses 0, 1 and 255 and a death by signal exactly', async () => {
    const ids = await queue('exits', 'exit 0', 'echo out; echo err >&2; exit 1', 'exit 255', 'kill -KILL $$');
    await startAgent('exits', { slots: 4 });
    const rows = await Promise.all(ids.map(finished));
    expect(rows.map((r) => [r.attempt, r.exitStatus, r.termSignal, r.lostReason])).toEqual([
      [1, 0, null, null],
      [1, 1, null, null],
      [1, 255, null, null],
      [1, null, 'SIGKILL', null],
    ]);
    expect(rows[1]?.outputHead).toBe('out\nerr\n');
    for (const row of rows) {
      expect(row.pid).toBeGreaterThan(0);
      expect(row.startedAt).not.toBeNull();
      expect(row.startedAt!.getTime()).toBeLessThanOrEqual(row.finishedAt!.getTime());
    }
  });

  it('finishes a command that cannot be spawned as a failure with the reason in its output', async () => {
    const [id] = await queue('nospawn', 'echo never');
    await startAgent('nospawn', { shellPath: join(scratch, 'no-such-shell') });
    const row = await finished(id!);
    expect(row.exitStatus).toBe(127);
    expect(row.pid).toBeNull();
    expect(row.startedAt).not.toBeNull();
    expect(row.outputHead).toContain('no-such-shell');
    expect(row.outputHead).toContain('no such file or directory');
  });

  it('keeps multi-byte output whole: head and tail in the database, everything in the log file', async () => {
    const lines = 6_000;
    const [id] = await queue('utf8', `for i in $(seq 1 ${lines}); do printf '行%d 🍣 é\\n' "$i"; done`);
    const t = await startAgent('utf8');
    const row = await finished(id!);
    const expected = Array.from({ length: lines }, (_, i) => `行${i + 1} 🍣 é\n`).join('');
    expect(Buffer.byteLength(expected)).toBeGreaterThan(64 * 1024);
    expect(await t.logSink.read(id!)).toBe(expected);
    expect(row.outputHead.length).toBeGreaterThan(0);
    expect(row.outputTail.length).toBeGreaterThan(0);
    expect(expected.startsWith(row.outputHead)).toBe(true);
    expect(expected.endsWith(row.outputTail)).toBe(true);
    expect(row.outputHead + row.outputTail).not.toContain('\uFFFD');
    expect(row.outputTail.endsWith(`行${lines} 🍣 é\n`)).toBe(true);
  });

  it('pushes the output so far to the database while the command runs', async () => {
    const gate = file('output-gate');
    const [id] = await queue('progress', `echo 'half way ✓'; while [ ! -f '${gate}' ]; do sleep 0.02; done; echo done`);
    await startAgent('progress');
    await waitFor(async () => (await executionRow(tdb.db, id!)).outputHead === 'half way ✓\n', { ...WAIT, description: 'partial output' });
    expect((await executionRow(tdb.db, id!)).finishedAt).toBeNull();
    writeFileSync(gate, '');
    expect((await finished(id!)).outputHead).toBe('half way ✓\ndone\n');
  });

  it('delivers a process_signals kill to the whole group, grandchild included, and records the result', async () => {
    const grandchildFile = file('grandchild.pid');
    const [id] = await queue('kill', `sleep 300 & echo $! > '${grandchildFile}'; wait`);
    await startAgent('kill');
    const row = await started(id!);
    strayGroups.push(row.pid!);
    const grandchild = await waitFor(() => (existsSync(grandchildFile) ? Number(readFileSync(grandchildFile, 'utf8')) : 0), WAIT);
    expect(isPidAlive(grandchild)).toBe(true);
    await tdb.db
      .insertInto('process_signals')
      .values({ id: nextId++, execution_id: id!, attempt: row.attempt, signal: 'SIGTERM', reason: 'Terminated by test', requested_at: new Date(), delivered_at: null, result: null })
      .execute();
    const done = await finished(id!);
    expect(done.termSignal).toBe('SIGTERM');
    expect(done.exitStatus).toBeNull();
    // The finish is recorded once the leader exited and the pipes closed; the kill's result only once it saw the
    // group empty, which can come later. The group is checked after that, not after the finish.
    const signal = await waitFor(
      () => tdb.db.selectFrom('process_signals').selectAll().where('execution_id', '=', id!).where('delivered_at', 'is not', null).executeTakeFirst(),
      WAIT,
    );
    expect(signal.result).toBe(`SIGTERM sent to process group ${row.pid}; the group ended`);
    expect(isPidAlive(grandchild)).toBe(false);
    expect(isProcessGroupAlive(row.pid!)).toBe(false);
  });

  it('escalates to SIGKILL after the grace period when the group ignores SIGTERM', async () => {
    const [id] = await queue('stubborn', `trap '' TERM; sleep 300 & wait; sleep 300`);
    await startAgent('stubborn', { killGraceMs: 300 });
    const row = await started(id!);
    strayGroups.push(row.pid!);
    await tdb.db
      .insertInto('process_signals')
      .values({ id: nextId++, execution_id: id!, attempt: row.attempt, signal: 'SIGTERM', reason: 'timeout', requested_at: new Date(), delivered_at: null, result: null })
      .execute();
    const done = await finished(id!);
    expect(done.termSignal).toBe('SIGKILL');
    // As above: the group is known empty once the kill's result is written, not once the finish is.
    const signal = await waitFor(
      () => tdb.db.selectFrom('process_signals').select('result').where('execution_id', '=', id!).where('delivered_at', 'is not', null).executeTakeFirst(),
      WAIT,
    );
    expect(signal.result).toBe(`SIGTERM, then SIGKILL after 300 ms, sent to process group ${row.pid}; the group ended`);
    expect(isProcessGroupAlive(row.pid!)).toBe(false);
  });

  it('kills its command and writes nothing more once someone else finished the execution (lease lost)', async () => {
    const [id] = await queue('lost', 'sleep 300');
    const t = await startAgent('lost');
    const row = await started(id!);
    strayGroups.push(row.pid!);
    // What the monitor does to a worker it judged lost (D10).
    const lostAt = new Date('2026-03-01T00:00:00.000Z');
    await tdb.db.updateTable('executions').set({ finished_at: lostAt, lost_reason: 'worker lost' }).where('id', '=', id!).execute();
    await waitFor(() => !isProcessGroupAlive(row.pid!), { ...WAIT, description: 'the group to be killed' });
    // The end of the killed command is handled after the group is gone: stop() returns once the job has left the
    // agent, so whatever it would have written is written by then.
    await t.agent.stop();
    const after = await executionRow(tdb.db, id!);
    expect([after.finishedAt, after.lostReason, after.exitStatus, after.termSignal]).toEqual([lostAt, 'worker lost', null, null]);
  });

  it('claims nothing new while suspended and keeps running what it holds', async () => {
    const gate = file('suspend-gate');
    const [held] = await queue('suspend', `while [ ! -f '${gate}' ]; do sleep 0.02; done`);
    const t = await startAgent('suspend', { slots: 2 });
    await started(held!);
    const workerId = t.agent.workerId!;
    await tdb.db.updateTable('workers').set({ suspended: true }).where('id', '=', workerId).execute();
    const heartbeatAt = async () =>
      fromDbTime((await tdb.db.selectFrom('workers').select('heartbeat_at').where('id', '=', workerId).executeTakeFirstOrThrow()).heartbeat_at).getTime();
    const nextHeartbeat = async () => {
      const seen = await heartbeatAt();
      await waitFor(async () => (await heartbeatAt()) > seen, WAIT);
    };
    // A heartbeat writes, then reads the flags: the second write after the flag was set follows a read of it.
    await nextHeartbeat();
    await nextHeartbeat();
    const [waiting] = await queue('suspend', 'echo later');
    await nextHeartbeat();
    await nextHeartbeat();
    expect((await executionRow(tdb.db, waiting!)).claimedAt).toBeNull();
    writeFileSync(gate, '');
    expect((await finished(held!)).exitStatus).toBe(0);
    await tdb.db.updateTable('workers').set({ suspended: false }).where('id', '=', workerId).execute();
    expect((await finished(waiting!)).outputHead).toBe('later\n');
  });

  it('drains on stop(): the running command finishes and is recorded, nothing new is claimed', async () => {
    const gate = file('drain-gate');
    const [running] = await queue('drain', `while [ ! -f '${gate}' ]; do sleep 0.02; done; echo drained`);
    const messages: string[] = [];
    const record = (message: string) => void messages.push(message);
    const t = await startAgent('drain', { slots: 2, logger: { info: record, warn: record, error: record } });
    await started(running!);
    const stopping = t.agent.stop('test drain');
    // A claim already in flight may still land; none may start after this line is logged.
    await waitFor(() => messages.some((m) => m.startsWith('stopping (test drain): claims are over')), WAIT);
    const [later] = await queue('drain', 'echo too late');
    t.agent.nudge();
    writeFileSync(gate, '');
    await stopping;
    const row = await executionRow(tdb.db, running!);
    expect([row.exitStatus, row.outputHead]).toEqual([0, 'drained\n']);
    expect((await executionRow(tdb.db, later!)).claimedAt).toBeNull();
    expect(await tdb.db.selectFrom('workers').select('id').where('id', '=', t.agent.workerId!).executeTakeFirst()).toBeUndefined();
    await tdb.db.deleteFrom('executions').where('id', '=', later!).execute();
  });

  it('claims at once when nudged, not at the next poll (the entry point for an outside doorbell)', async () => {
    const [first] = await queue('nudge', 'echo first');
    const t = await startAgent('nudge', { pollIntervalMs: 10 * 60_000 });
    await finished(first!);
    // The pass after the first command ended is over well before this; the next poll is ten minutes away.
    await sleep(500);
    const [second] = await queue('nudge', 'echo second');
    await sleep(500);
    expect((await executionRow(tdb.db, second!)).claimedAt).toBeNull();
    t.agent.nudge();
    expect((await finished(second!)).outputHead).toBe('second\n');
  });

  it('kills what is still running when the drain grace is over, recording the end', async () => {
    const [id] = await queue('drain-kill', 'sleep 300');
    const t = await startAgent('drain-kill', { drainGraceMs: 200, killGraceMs: 500 });
    const row = await started(id!);
    strayGroups.push(row.pid!);
    await t.agent.stop();
    const done = await executionRow(tdb.db, id!);
    expect([done.exitStatus, done.termSignal]).toEqual([null, 'SIGTERM']);
    // stop() waits for the leader's end and the closed pipes, not for the kill to see the group empty.
    await waitFor(() => !isProcessGroupAlive(row.pid!), { ...WAIT, description: 'the killed group to be gone' });
  });

  it('stops by itself after the idle timeout', async () => {
    const [id] = await queue('idle', 'true');
    const t = await startAgent('idle', { idleTimeoutMs: 300 });
    await finished(id!);
    await t.agent.done;
    expect(await tdb.db.selectFrom('workers').select('id').where('id', '=', t.agent.workerId!).executeTakeFirst()).toBeUndefined();
  });

  it('samples the memory of a running process group', async () => {
    const gate = file('memory-gate');
    const [id] = await queue('memory', `while [ ! -f '${gate}' ]; do sleep 0.02; done`);
    await startAgent('memory', { memorySchedule: () => 20 });
    await started(id!);
    const samples = await waitFor(async () => {
      const rows = await tdb.db.selectFrom('memory_samples').selectAll().where('execution_id', '=', id!).execute();
      return rows.length >= 2 ? rows : undefined;
    }, WAIT);
    writeFileSync(gate, '');
    await finished(id!);
    for (const sample of samples) expect(Number(sample.rss_kb)).toBeGreaterThan(0);
  });

  it('heart-beats the pids it holds', async () => {
    const gate = file('pids-gate');
    const [id] = await queue('pids', `while [ ! -f '${gate}' ]; do sleep 0.02; done`);
    const t = await startAgent('pids');
    const row = await started(id!);
    const pids = await waitFor(async () => {
      const worker = await tdb.db.selectFrom('workers').select('pids').where('id', '=', t.agent.workerId!).executeTakeFirstOrThrow();
      const parsed = JSON.parse(worker.pids) as Record<string, number>;
      return parsed[String(id)] !== undefined ? parsed : undefined;
    }, WAIT);
    expect(pids).toEqual({ [String(id)]: row.pid });
    writeFileSync(gate, '');
    await finished(id!);
  });

  it('keeps listing and leasing a command whose finish it is still retrying, as the monitor expects', async () => {
    // The database refuses the finish write until told otherwise; everything else goes through.
    let refuseFinish = true;
    const refusing: KyselyPlugin = {
      transformQuery({ node }) {
        const setsFinish =
          UpdateQueryNode.is(node) && (node.updates ?? []).some((u) => ColumnNode.is(u.column) && u.column.column.name === 'finished_at');
        if (refuseFinish && setsFinish) throw new Error('the database refused the finish (test)');
        return node;
      },
      transformResult: ({ result }) => Promise.resolve(result),
    };
    const [id] = await queue('finishing', 'exit 3');
    // A lease shorter than the wait below: only renewals after the exit can keep it ahead.
    const t = await startAgent('finishing', { database: { ...handle, db: handle.db.withPlugin(refusing) }, leaseMs: 1_000 });
    // However the test ends, let the finish through, or stopping the agent would wait for it.
    onTestFinished(() => {
      refuseFinish = false;
    });
    const row = await started(id!);
    await waitFor(() => !isPidAlive(row.pid!), { ...WAIT, description: 'the command to exit' });
    const exitedAt = new Date();
    const afterClaimLease = new Date(exitedAt.getTime() + 1_500);
    const beat = await waitFor(async () => {
      const worker = await tdb.db.selectFrom('workers').select(['pids', 'heartbeat_at']).where('id', '=', t.agent.workerId!).executeTakeFirstOrThrow();
      return fromDbTime(worker.heartbeat_at) > afterClaimLease ? worker : undefined;
    }, { ...WAIT, description: 'a heartbeat well after the exit' });
    // Listed until the finish is written: otherwise the monitor would judge the command absent and lose its exit status.
    expect(JSON.parse(beat.pids)).toEqual({ [String(id)]: row.pid });
    const leased = await tdb.db.selectFrom('executions').select(['lease_expires_at', 'finished_at']).where('id', '=', id!).executeTakeFirstOrThrow();
    expect(leased.finished_at).toBeNull();
    // The claim's lease ended a second after the claim, before the exit; only renewals after the exit put it here.
    expect(fromDbTime(leased.lease_expires_at!).getTime()).toBeGreaterThan(afterClaimLease.getTime());
    refuseFinish = false;
    expect((await finished(id!)).exitStatus).toBe(3);
  });

  it('runs a whole workflow with the engine, and a cancel kills the running command through its process group', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 501, 'env: GREETING="héllo"\nexecute: echo a\nexecute: echo "$GREETING $KUROKO2_JOB_INSTANCE_ID"\n', { name: 'E2E' });
    await insertDefinition(tdb.db, 502, 'execute: sleep 300\n', { name: 'Long' });
    await startAgent('@default', { onExecutionFinished: () => undefined });
    const { instance } = await services.operations.launch({ definitionId: 501, launchedBy: 'test' });
    await waitFor(async () => {
      await services.processorPass();
      return (await statusOf(tdb.db, instance.id)) === 'success';
    }, { ...WAIT, description: 'the workflow to succeed' });
    const histories = await tdb.db.selectFrom('execution_histories').select(['shell', 'exit_status', 'pid']).where('job_instance_id', '=', instance.id).execute();
    expect(histories.map((h) => [h.shell, h.exit_status]).sort()).toEqual([
      ['echo "$GREETING $KUROKO2_JOB_INSTANCE_ID"', 0],
      ['echo a', 0],
    ]);
    const logs = await tdb.db.selectFrom('instance_logs').select('message').where('job_instance_id', '=', instance.id).execute();
    expect(logs.some((l) => l.message.includes(`héllo ${instance.id}`))).toBe(true);

    const long = await services.operations.launch({ definitionId: 502, launchedBy: 'test' });
    const execution = await waitFor(async () => {
      await services.processorPass();
      const row = await tdb.db.selectFrom('executions').selectAll().where('job_instance_id', '=', long.instance.id).executeTakeFirst();
      return row?.pid ? row : undefined;
    }, WAIT);
    const pgid = Number(execution.pid);
    strayGroups.push(pgid);
    await services.operations.cancel(long.instance.id, 'alice');
    await waitFor(async () => {
      await services.processorPass();
      return tdb.db.selectFrom('execution_histories').selectAll().where('job_instance_id', '=', long.instance.id).executeTakeFirst();
    }, { ...WAIT, description: 'the killed command to be archived' }).then((history) => {
      expect(history.term_signal).toBe('SIGTERM');
    });
    // The agent writes the kill's result once the group is gone, which can be after the exit was archived.
    const signal = await waitFor(
      () => tdb.db.selectFrom('process_signals').select('result').where('execution_id', '=', Number(execution.id)).where('delivered_at', 'is not', null).executeTakeFirst(),
      WAIT,
    );
    expect(signal.result).toContain(`SIGTERM sent to process group ${pgid}`);
    expect(isProcessGroupAlive(pgid)).toBe(false);
  });
});
