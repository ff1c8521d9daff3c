import { describe, expect, it } from 'vitest';
import type { SleepGate } from '../../adapters/aws/sleep-gate';
import { DEFAULT_SLEEP_SETTINGS, type WorkInFlight } from '../../core/services/sleep-plan';
import { sleepIfIdle, type SleepSource } from '../../app/lambda/lambda-sleep';

const NOW = new Date('2026-03-01T12:00:00Z');
const IDLE: WorkInFlight = { tokens: 0, executions: 0, workers: 0, pendingDeliveries: 0, unsettledEvents: 0 };

/** A gate that keeps its value in memory and can be told to fail its sleep write. */
function memoryGate(options: { failSleep?: boolean } = {}) {
  let until: Date | undefined;
  const wakes: string[] = [];
  const gate: SleepGate = {
    asleepUntil: (now) => Promise.resolve(until !== undefined && until > now ? until : undefined),
    sleep: (at) => {
      if (options.failSleep) return Promise.reject(new Error('ThrottlingException: Rate exceeded'));
      until = at;
      return Promise.resolve();
    },
    wake: (reason) => {
      wakes.push(reason);
      const was = until !== undefined;
      until = undefined;
      return Promise.resolve(was);
    },
  };
  return { gate, wakes, until: () => until };
}

/** An idle source whose second look can fail or find work. */
function source(second: 'idle' | 'busy' | 'fails' = 'idle'): SleepSource {
  let looks = 0;
  return {
    workInFlight: () => {
      looks++;
      if (looks === 1 || second === 'idle') return Promise.resolve(IDLE);
      if (second === 'busy') return Promise.resolve({ ...IDLE, tokens: 1 });
      return Promise.reject(new Error('the database did not answer'));
    },
    listScheduledDefinitions: () => Promise.resolve([]),
    errorsSince: () => Promise.resolve([]),
  };
}

const run = (gate: SleepGate, src: SleepSource) =>
  sleepIfIdle({ gate, source: src, now: () => NOW, remindAfterMs: 86_400_000, settings: DEFAULT_SLEEP_SETTINGS });

describe('sleepIfIdle', () => {
  it('publishes the sleep when both looks find nothing in flight', async () => {
    const g = memoryGate();
    const until = new Date(NOW.getTime() + DEFAULT_SLEEP_SETTINGS.maxSleepMs);
    await expect(run(g.gate, source())).resolves.toEqual({ asleepUntil: until.toISOString() });
    expect(g.until()).toEqual(until);
  });

  it('takes the sleep back when the second look finds work', async () => {
    const g = memoryGate();
    await expect(run(g.gate, source('busy'))).resolves.toEqual({ awake: ['1 tokens'] });
    expect(g.until()).toBeUndefined();
    expect(g.wakes).toEqual(['work arrived while going to sleep']);
  });

  it('stays awake without failing the pass when the sleep cannot be written', async () => {
    const g = memoryGate({ failSleep: true });
    await expect(run(g.gate, source())).resolves.toEqual({ awake: ['could not publish the sleep: ThrottlingException: Rate exceeded'] });
    expect(g.wakes).toEqual(['could not publish the sleep']);
  });

  it('does not keep a sleep it could not check again, and reports the failure', async () => {
    const g = memoryGate();
    await expect(run(g.gate, source('fails'))).rejects.toThrow('the database did not answer');
    expect(g.until()).toBeUndefined();
    expect(g.wakes).toEqual(['could not check the sleep again']);
  });
});
