import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WORKER_LOST_MINUTES,
  planFleet,
  type FleetConfig,
  type FleetInput,
  type FleetInstance,
  type FleetWorker,
} from '../../../core/services/provisioner-service';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);

const config: FleetConfig = { slotsPerWorker: 4, minInstances: 0, maxInstances: 5, bootTimeoutMinutes: 10, idleMinutes: 15 };

const instance = (id: string, over: Partial<FleetInstance> = {}): FleetInstance => ({
  instanceId: id,
  state: 'running',
  launchedAt: minutesAgo(30),
  registered: true,
  ...over,
});

const worker = (id: number, instanceId: string | undefined, over: Partial<FleetWorker> = {}): FleetWorker => ({
  id,
  ...(instanceId !== undefined ? { instanceId } : {}),
  heartbeatAt: minutesAgo(0.1),
  suspended: false,
  draining: false,
  busySlots: 0,
  slots: 4,
  ...over,
});

const plan = (over: Omit<Partial<FleetInput>, 'config'> & { config?: Partial<FleetConfig> } = {}) =>
  planFleet({
    waitingExecutions: 0,
    runningExecutions: 0,
    workers: [],
    instances: [],
    now: NOW,
    ...over,
    config: { ...config, ...over.config },
  });

describe('planFleet: launching', () => {
  it('launches nothing when nothing waits', () => {
    expect(plan()).toEqual({ launch: 0, terminate: [], reasons: [] });
  });

  it('launches enough instances for the waiting executions, rounding up to whole workers', () => {
    expect(plan({ waitingExecutions: 1 }).launch).toBe(1);
    expect(plan({ waitingExecutions: 4 }).launch).toBe(1);
    expect(plan({ waitingExecutions: 5 }).launch).toBe(2);
  });

  it('never launches above maxInstances, and says so', () => {
    const result = plan({ waitingExecutions: 100 });
    expect(result.launch).toBe(5);
    expect(result.reasons.join('\n')).toContain('max 5 instances');
  });

  it('counts existing instances against the maximum', () => {
    const instances = ['i-1', 'i-2', 'i-3'].map((id) => instance(id));
    const workers = instances.map((i, n) => worker(n + 1, i.instanceId, { busySlots: 4 }));
    expect(plan({ waitingExecutions: 100, instances, workers }).launch).toBe(2);
  });

  it('uses the free slots of live workers before launching', () => {
    const workers = [worker(1, 'i-1', { busySlots: 1 })];
    expect(plan({ waitingExecutions: 3, instances: [instance('i-1')], workers }).launch).toBe(0);
    expect(plan({ waitingExecutions: 4, instances: [instance('i-1')], workers }).launch).toBe(1);
  });

  it('counts the slots of agents outside the managed fleet', () => {
    expect(plan({ waitingExecutions: 4, workers: [worker(1, undefined)] }).launch).toBe(0);
  });

  it('counts instances still booting as capacity, so a second pass does not launch again', () => {
    const booting = [instance('i-new', { state: 'pending', launchedAt: minutesAgo(1), registered: false })];
    expect(plan({ waitingExecutions: 4, instances: booting }).launch).toBe(0);
    expect(plan({ waitingExecutions: 5, instances: booting }).launch).toBe(1);
  });

  it('gives no capacity to suspended, draining or lost workers', () => {
    const instances = [instance('i-1'), instance('i-2'), instance('i-3')];
    const workers = [
      worker(1, 'i-1', { suspended: true }),
      worker(2, 'i-2', { draining: true }),
      worker(3, 'i-3', { heartbeatAt: minutesAgo(DEFAULT_WORKER_LOST_MINUTES + 1), busySlots: 1 }),
    ];
    expect(plan({ waitingExecutions: 2, instances, workers }).launch).toBe(1);
  });

  it('treats a worker holding more than its slots as full, not as negative capacity', () => {
    const workers = [worker(1, 'i-1', { busySlots: 6 }), worker(2, undefined, { busySlots: 0 })];
    expect(plan({ waitingExecutions: 4, instances: [instance('i-1')], workers }).launch).toBe(0);
  });

  it('tops up to minInstances even when nothing waits, within the maximum', () => {
    const result = plan({ config: { minInstances: 2 } });
    expect(result.launch).toBe(2);
    expect(result.reasons.join('\n')).toContain('minimum of 2');
    expect(plan({ config: { minInstances: 2 }, instances: [instance('i-1')], workers: [worker(1, 'i-1')] }).launch).toBe(1);
  });

  it('does not add the minimum on top of what the waiting executions already launch', () => {
    expect(plan({ waitingExecutions: 8, config: { minInstances: 1 } }).launch).toBe(2);
  });

  it('reports instances above the maximum without terminating them', () => {
    const instances = ['i-1', 'i-2', 'i-3'].map((id) => instance(id));
    const workers = instances.map((i, n) => worker(n + 1, i.instanceId));
    const result = plan({ instances, workers, config: { maxInstances: 2 } });
    expect(result).toMatchObject({ launch: 0, terminate: [] });
    expect(result.reasons.join('\n')).toContain('exceed the maximum of 2');
  });

  it('uses a workerLostMinutes override', () => {
    const workers = [worker(1, undefined, { heartbeatAt: minutesAgo(1) })];
    expect(plan({ waitingExecutions: 4, workers }).launch).toBe(0);
    expect(plan({ waitingExecutions: 4, workers, config: { workerLostMinutes: 0.5 } }).launch).toBe(1);
  });
});

describe('planFleet: terminating', () => {
  it('replaces an instance whose agent never registered within the boot timeout', () => {
    const stuck = instance('i-stuck', { registered: false, launchedAt: minutesAgo(10) });
    const result = plan({ waitingExecutions: 1, instances: [stuck] });
    expect(result.terminate).toEqual(['i-stuck']);
    expect(result.launch).toBe(1);
    expect(result.reasons.join('\n')).toContain('no agent registered on it within 10 min');
  });

  it('waits for an instance younger than the boot timeout', () => {
    const young = instance('i-young', { registered: false, launchedAt: minutesAgo(9.9) });
    expect(plan({ instances: [young] }).terminate).toEqual([]);
  });

  it('terminates an instance whose only worker is lost and idle', () => {
    const workers = [worker(1, 'i-1', { heartbeatAt: minutesAgo(5) })];
    const result = plan({ instances: [instance('i-1')], workers });
    expect(result.terminate).toEqual(['i-1']);
    expect(result.reasons.join('\n')).toContain('lost and hold nothing');
  });

  it('never terminates an instance whose lost worker still holds a command', () => {
    const workers = [worker(1, 'i-1', { heartbeatAt: minutesAgo(5), busySlots: 1 })];
    expect(plan({ instances: [instance('i-1')], workers }).terminate).toEqual([]);
  });

  it('never terminates an instance with a suspended worker', () => {
    const workers = [worker(1, 'i-1', { heartbeatAt: minutesAgo(5), suspended: true })];
    expect(plan({ instances: [instance('i-1')], workers }).terminate).toEqual([]);
  });

  it('keeps an instance when a restarted agent registered again beside a lost row', () => {
    const workers = [worker(1, 'i-1', { heartbeatAt: minutesAgo(30) }), worker(2, 'i-1')];
    expect(plan({ instances: [instance('i-1')], workers }).terminate).toEqual([]);
  });

  it('leaves idle live workers alone: their agents stop on their own', () => {
    const workers = [worker(1, 'i-1'), worker(2, 'i-2', { draining: true })];
    expect(plan({ instances: [instance('i-1'), instance('i-2')], workers }).terminate).toEqual([]);
  });

  it('keeps an instance marked registered even when its worker serves another queue', () => {
    expect(plan({ instances: [instance('i-1', { registered: true })] }).terminate).toEqual([]);
  });

  it('frees room under the maximum by what it terminates', () => {
    const stuck = ['i-a', 'i-b'].map((id) => instance(id, { registered: false, launchedAt: minutesAgo(60) }));
    const result = plan({ waitingExecutions: 8, instances: stuck, config: { maxInstances: 2 } });
    expect(result.terminate).toEqual(['i-a', 'i-b']);
    expect(result.launch).toBe(2);
  });
});

describe('planFleet: invariants (property)', () => {
  const workerArb = fc.record({
    instance: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    heartbeatMinutesAgo: fc.double({ min: 0, max: 10, noNaN: true }),
    suspended: fc.boolean(),
    draining: fc.boolean(),
    busySlots: fc.integer({ min: 0, max: 6 }),
    slots: fc.integer({ min: 1, max: 6 }),
  });
  const instanceArb = fc.record({
    launchedMinutesAgo: fc.double({ min: 0, max: 30, noNaN: true }),
    pending: fc.boolean(),
  });
  const inputArb = fc
    .record({
      waiting: fc.integer({ min: 0, max: 60 }),
      running: fc.integer({ min: 0, max: 60 }),
      workers: fc.array(workerArb, { maxLength: 8 }),
      instances: fc.array(instanceArb, { maxLength: 6 }),
      slotsPerWorker: fc.integer({ min: 1, max: 8 }),
      minInstances: fc.integer({ min: 0, max: 3 }),
      extraMax: fc.integer({ min: 0, max: 6 }),
    })
    .map((r): FleetInput => {
      const instances = r.instances.map((i, n) => ({
        instanceId: `i-${n}`,
        state: i.pending ? ('pending' as const) : ('running' as const),
        launchedAt: minutesAgo(i.launchedMinutesAgo),
        registered: false,
      }));
      const workers = r.workers.map((w, n) => ({
        id: n + 1,
        ...(w.instance !== undefined && w.instance < instances.length ? { instanceId: `i-${w.instance}` } : {}),
        heartbeatAt: minutesAgo(w.heartbeatMinutesAgo),
        suspended: w.suspended,
        draining: w.draining,
        busySlots: w.busySlots,
        slots: w.slots,
      }));
      for (const i of instances) i.registered = workers.some((w) => w.instanceId === i.instanceId);
      return {
        waitingExecutions: r.waiting,
        runningExecutions: r.running,
        workers,
        instances,
        now: NOW,
        config: {
          slotsPerWorker: r.slotsPerWorker,
          minInstances: r.minInstances,
          maxInstances: Math.max(1, r.minInstances + r.extraMax),
          bootTimeoutMinutes: 10,
          idleMinutes: 15,
        },
      };
    });

  it('never terminates an instance with a suspended or busy worker, and never exceeds the maximum by launching', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planFleet(input);
        for (const id of result.terminate) {
          const held = input.workers.filter((w) => w.instanceId === id);
          expect(held.some((w) => w.suspended || w.busySlots > 0)).toBe(false);
        }
        expect(result.launch).toBeGreaterThanOrEqual(0);
        const kept = input.instances.length - result.terminate.length;
        if (result.launch > 0) expect(kept + result.launch).toBeLessThanOrEqual(input.config.maxInstances);
        expect(new Set(result.terminate).size).toBe(result.terminate.length);
      }),
    );
  });
});
