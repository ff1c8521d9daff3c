import { describe, expect, it } from 'vitest';
import { channelScanStart, DEFAULT_NOTIFIER_SETTINGS } from '../../../core/services/notifier-service';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const now = new Date('2026-03-01T12:00:00Z');
const at = (msAgo: number) => new Date(now.getTime() - msAgo);

/** A store whose channels were first seen at the given times; a channel missing from it is seen now. */
const storeWith = (epochs: Record<string, Date>) => {
  const calls: string[][] = [];
  return {
    calls,
    channelEpochs: (names: readonly string[], seenAt: Date) => {
      calls.push([...names]);
      return Promise.resolve(new Map(names.map((n) => [n, epochs[n] ?? seenAt])));
    },
  };
};

describe('channelScanStart (the notifier pass and the backlog metric)', () => {
  it('starts each channel a backfill period before its first sighting, never before the event age limit', async () => {
    const store = storeWith({ sns: at(30 * DAY_MS), webhook: at(2 * HOUR_MS) });
    const { starts, since } = await channelScanStart(store, ['sns', 'webhook', 'slack'], now, DEFAULT_NOTIFIER_SETTINGS);
    expect(Object.fromEntries([...starts].map(([name, ms]) => [name, new Date(ms)]))).toEqual({
      sns: at(DEFAULT_NOTIFIER_SETTINGS.maxEventAgeMs),
      webhook: at(2 * HOUR_MS + DEFAULT_NOTIFIER_SETTINGS.channelBackfillMs),
      slack: at(DEFAULT_NOTIFIER_SETTINGS.channelBackfillMs),
    });
    expect(since).toEqual(at(DEFAULT_NOTIFIER_SETTINGS.maxEventAgeMs));
  });

  it('scans from the earliest channel start, with the settings given', async () => {
    const store = storeWith({ webhook: at(2 * HOUR_MS) });
    const { since } = await channelScanStart(store, ['webhook', 'slack'], now, { maxEventAgeMs: DAY_MS, channelBackfillMs: 10 * 60_000 });
    expect(since).toEqual(at(2 * HOUR_MS + 10 * 60_000));
  });

  it('reads nothing without channels', async () => {
    const store = storeWith({});
    expect(await channelScanStart(store, [], now, DEFAULT_NOTIFIER_SETTINGS)).toEqual({ starts: new Map(), since: now });
    expect(store.calls).toEqual([]);
  });
});
