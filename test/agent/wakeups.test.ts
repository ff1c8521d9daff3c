/**
 * Wake-ups across processes (issue 18), with real processes on the real MariaDB: a separate agent learns of work
 * queued by another process without waiting for its poll interval, either by adaptive polling while work is in
 * flight or through a doorbell, and a doorbell that is lost or broken still leaves the fallback poll. Behaviour
 * only: every agent here has a ten-minute poll, so a claim within the test's deadline proves the wake-up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Doorbell } from '../../core/doorbell';
import { DEFAULT_HOT_WINDOW_MS } from '../../core/poll-pace';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';
import { executionRow, queueExecutions, testAgent, type TestAgent } from './agent-fixtures';

const WAIT = { timeoutMs: 20_000 };
const TEN_MINUTES = 10 * 60_000;

/** A doorbell in memory: ring() ends the listen under way, or the next one. */
class MemoryDoorbell implements Doorbell {
  rings = 0;
  #pending = false;
  #waiting: (() => void) | undefined;
  ring(): Promise<void> {
    this.rings++;
    if (this.#waiting) this.#waiting();
    else this.#pending = true;
    return Promise.resolve();
  }
  listen(maxWaitMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const done = (rang: boolean) => {
        this.#waiting = undefined;
        clearTimeout(timer);
        signal.removeEventListener('abort', aborted);
        resolve(rang);
      };
      const aborted = () => done(false);
      const timer = setTimeout(() => done(false), maxWaitMs);
      signal.addEventListener('abort', aborted);
      this.#waiting = () => done(true);
    });
  }
}

describe('wake-ups of a separate agent on MariaDB', () => {
  let tdb: TestDatabase;
  let handle: DatabaseHandle;
  let nextId = 50_000;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase('mysql');
    handle = tdb.openAnother();
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.dispose()));
  });
  afterAll(async () => {
    await handle?.close();
    await tdb?.close();
  });

  const startAgent = async (queue: string, options: Parameters<typeof testAgent>[1]): Promise<TestAgent> => {
    const t = testAgent(handle, { queues: [queue], ids: tdb.idGenerator, ...options });
    agents.push(t);
    await t.agent.start();
    return t;
  };
  const queue = async (queueName: string, shell: string): Promise<number> => {
    const id = nextId++;
    await queueExecutions(tdb.db, [{ id, shell, queue: queueName }]);
    return id;
  };
  const finished = (id: number) =>
    waitFor(async () => {
      const e = await executionRow(tdb.db, id);
      return e.finishedAt ? e : undefined;
    }, { ...WAIT, description: `execution ${id} to finish` });

  it('with adaptive polling, claims what another process queued right after a command ended, though its poll is ten minutes', async () => {
    const first = await queue('hot', 'echo first');
    await startAgent('hot', { pollIntervalMs: TEN_MINUTES, hotPollMs: 2 });
    await finished(first);
    // As the server's processor does after a finish: queue the next step, and tell the agent nothing.
    const second = await queue('hot', 'echo second');
    expect((await finished(second)).outputHead).toBe('second\n');
  });

  it('claims when the doorbell rings, though its poll is ten minutes', async () => {
    const bell = new MemoryDoorbell();
    const first = await queue('bell', 'echo first');
    await startAgent('bell', { pollIntervalMs: TEN_MINUTES, doorbell: bell });
    await finished(first);
    await sleep(300);
    const second = await queue('bell', 'echo second');
    await sleep(300);
    expect((await executionRow(tdb.db, second)).claimedAt).toBeNull();
    await bell.ring();
    expect((await finished(second)).outputHead).toBe('second\n');
  });

  it('with a doorbell, reads nothing once the hot window after its work is over, until its fallback poll', async () => {
    // Its own connection, counting statements; no heartbeat in the window, so every statement would be a claim poll.
    let statements = 0;
    const counted = createDatabase(tdb.url, { log: () => void statements++ });
    try {
      const first = await queue('quiet', 'echo first');
      await startAgent('quiet', { database: counted, pollIntervalMs: TEN_MINUTES, hotPollMs: 50, heartbeatIntervalMs: TEN_MINUTES, doorbell: new MemoryDoorbell() });
      await finished(first);
      // The hot window (2 s after the last command) polls every 50 ms; after it, nothing is in flight.
      await sleep(DEFAULT_HOT_WINDOW_MS + 500);
      const before = statements;
      await sleep(2_000);
      expect(statements - before).toBe(0);
    } finally {
      await Promise.all(agents.splice(0).map((a) => a.dispose()));
      await counted.close();
    }
  });

  it('still claims by its fallback poll when the ring is lost', async () => {
    const bell = new MemoryDoorbell();
    await startAgent('lost-ring', { pollIntervalMs: 100, doorbell: bell });
    await sleep(200);
    const id = await queue('lost-ring', 'echo polled');
    expect((await finished(id)).outputHead).toBe('polled\n');
    expect(bell.rings).toBe(0);
  });

  it('still claims by its fallback poll when the doorbell cannot be reached, and stops cleanly', async () => {
    let listens = 0;
    const broken: Doorbell = {
      ring: () => Promise.reject(new Error('unreachable')),
      listen: () => {
        listens++;
        return Promise.reject(new Error('unreachable'));
      },
    };
    const warnings: string[] = [];
    const t = await startAgent('broken-bell', {
      pollIntervalMs: 100,
      doorbell: broken,
      logger: { info: () => {}, warn: (message) => void warnings.push(message), error: () => {} },
    });
    const id = await queue('broken-bell', 'echo polled');
    expect((await finished(id)).outputHead).toBe('polled\n');
    await t.agent.stop();
    expect(listens).toBeGreaterThan(0);
    expect(warnings).toContain('could not listen to the doorbell; the poll covers it');
  });
});
