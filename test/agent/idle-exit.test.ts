import { describe, expect, it } from 'vitest';
import { mayLeaveIdle } from '../../agent/idle-exit';
import type { FleetWorkerRecord } from '../../db/repositories/fleet-repository';

const NOW = new Date('2026-03-01T00:00:00Z');
const worker = (id: number, extra: Partial<FleetWorkerRecord> = {}): FleetWorkerRecord => ({
  id,
  hostname: `i-${id.toString(16).padStart(17, '0')}`,
  queues: ['@default'],
  slots: 2,
  heartbeatAt: new Date(NOW.getTime() - 5_000),
  suspended: false,
  draining: false,
  busySlots: 0,
  ...extra,
});
const ask = (workerId: number, minInstances: number, workers: FleetWorkerRecord[]) =>
  mayLeaveIdle({ workerId, queue: '@default', minInstances, workers, now: NOW });

describe('mayLeaveIdle', () => {
  it('lets every idle worker leave a queue without a minimum', () => {
    expect(ask(1, 0, [worker(1)])).toBe(true);
  });

  it('keeps the lowest ids up to the minimum, so two idle agents never both leave nor both stay', () => {
    const workers = [worker(7), worker(3), worker(5)];
    expect([3, 5, 7].map((id) => ask(id, 2, workers))).toEqual([false, false, true]);
    expect([3, 5, 7].map((id) => ask(id, 1, workers))).toEqual([false, true, true]);
  });

  it('keeps a worker that is alone, even when its own row looks stale or is missing', () => {
    expect(ask(9, 1, [worker(9, { heartbeatAt: new Date(NOW.getTime() - 3_600_000) })])).toBe(false);
    expect(ask(9, 1, [])).toBe(false);
  });

  it('does not count lost, draining, unmanaged or other-queue workers towards the minimum', () => {
    const others = [
      worker(1, { heartbeatAt: new Date(NOW.getTime() - 3 * 60_000) }),
      worker(2, { draining: true }),
      worker(3, { hostname: 'build-host-1' }),
      worker(4, { queues: ['build'] }),
    ];
    expect(ask(10, 1, [...others, worker(10)])).toBe(false);
    expect(ask(10, 1, [...others, worker(5), worker(10)])).toBe(true);
  });
});
