import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors';
import type { SlotPlanInput } from '../../../core/schedule';
import { planSlots } from '../../../core/schedule';

const at = (hhmmss: string) => new Date(`2026-03-07T${hhmmss}Z`);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString().slice(11, 19));

function plan(overrides: Partial<SlotPlanInput> & Pick<SlotPlanInput, 'slots' | 'now'>) {
  const result = planSlots({ catchUpWindowMinutes: 10, suspended: false, isSuspendedSlot: () => false, ...overrides });
  return { launch: iso(result.launch), missed: iso(result.missed), skipped: iso(result.skipped) };
}

describe('planSlots (D9)', () => {
  it('launches the one slot of a scheduler that keeps up', () => {
    expect(plan({ slots: [at('10:00:00')], now: at('10:00:02') })).toEqual({ launch: ['10:00:00'], missed: [], skipped: [] });
  });

  it('after downtime launches only the most recent slot within the window and records the rest as missed', () => {
    expect(plan({ slots: [at('09:40:00'), at('09:50:00'), at('10:00:00')], now: at('10:05:00') })).toEqual({
      launch: ['10:00:00'],
      missed: ['09:40:00', '09:50:00'],
      skipped: [],
    });
  });

  it('misses every slot when even the most recent is older than the window', () => {
    expect(plan({ slots: [at('09:00:00'), at('09:30:00')], now: at('10:00:00') })).toEqual({
      launch: [],
      missed: ['09:00:00', '09:30:00'],
      skipped: [],
    });
  });

  it('measures lateness in whole minutes: window 10 launches up to 10:59 late, not 11:00', () => {
    const slots = [at('10:00:00')];
    expect(plan({ slots, now: at('10:10:00') }).launch).toEqual(['10:00:00']);
    expect(plan({ slots, now: at('10:10:59.999') }).launch).toEqual(['10:00:00']);
    expect(plan({ slots, now: at('10:11:00') })).toEqual({ launch: [], missed: ['10:00:00'], skipped: [] });
  });

  it('window 0 launches only a slot of the current minute', () => {
    const slots = [at('10:00:00')];
    expect(plan({ slots, now: at('10:00:59'), catchUpWindowMinutes: 0 }).launch).toEqual(['10:00:00']);
    expect(plan({ slots, now: at('10:01:00'), catchUpWindowMinutes: 0 }).missed).toEqual(['10:00:00']);
  });

  it('skips every slot of a suspended definition, even a due one', () => {
    expect(plan({ slots: [at('09:50:00'), at('10:00:00')], now: at('10:00:01'), suspended: true })).toEqual({
      launch: [],
      missed: [],
      skipped: ['09:50:00', '10:00:00'],
    });
  });

  it('skips suspend-cron slots and picks the most recent of the others', () => {
    const isSuspendedSlot = (d: Date) => d.getUTCMinutes() === 1;
    expect(plan({ slots: [at('09:58:00'), at('10:00:00'), at('10:01:00')], now: at('10:01:05'), isSuspendedSlot })).toEqual({
      launch: ['10:00:00'],
      missed: ['09:58:00'],
      skipped: ['10:01:00'],
    });
  });

  it('has nothing to do without slots', () => {
    expect(plan({ slots: [], now: at('10:00:00') })).toEqual({ launch: [], missed: [], skipped: [] });
  });

  it('orders its input and counts a repeated instant once', () => {
    expect(plan({ slots: [at('10:00:00'), at('09:50:00'), at('10:00:00')], now: at('10:00:30') })).toEqual({
      launch: ['10:00:00'],
      missed: ['09:50:00'],
      skipped: [],
    });
  });

  it('rejects a slot that is not due yet and a negative window', () => {
    expect(() => planSlots({ slots: [at('10:01:00')], now: at('10:00:00'), catchUpWindowMinutes: 5, suspended: false, isSuspendedSlot: () => false })).toThrow(
      ValidationError,
    );
    expect(() => planSlots({ slots: [], now: at('10:00:00'), catchUpWindowMinutes: -1, suspended: false, isSuspendedSlot: () => false })).toThrow(
      ValidationError,
    );
  });
});
