import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors';
import { DEFAULT_MONITOR_SETTINGS, exceedsExpectation, expectedPeakKb } from '../../../core/services/monitor-service';
import { readMonitorSettings } from '../../../app/config/monitor-settings';
import { retryDelayMs } from '../../../core/services/notifier-service';
import { deliveryUuid, signWebhookBody } from '../../../adapters/channels/notification-channels';
import { readNotificationSettings } from '../../../app/config/notification-settings';

describe('retry backoff', () => {
  it('doubles from the base and stops at the cap', () => {
    const settings = { backoffBaseMs: 10_000, backoffCapMs: 1_800_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 100].map((a) => retryDelayMs(a, settings))).toEqual([
      10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000, 1_800_000, 1_800_000,
    ]);
  });
});

describe('webhook signature and delivery id', () => {
  it('signs the exact body with HMAC-SHA256 as sha256=<hex>', () => {
    const body = '{"action":"notify_failure"}';
    expect(signWebhookBody(body, 's3cret')).toBe(`sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`);
    expect(signWebhookBody(`${body} `, 's3cret')).not.toBe(signWebhookBody(body, 's3cret'));
  });

  it('gives one stable UUID per (event, channel) and different ones otherwise', () => {
    const a = deliveryUuid('42:webhook');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deliveryUuid('42:webhook')).toBe(a);
    expect(deliveryUuid('43:webhook')).not.toBe(a);
    expect(deliveryUuid('42:slack')).not.toBe(a);
  });
});

describe('settings from the environment', () => {
  it('reads the monitor thresholds in seconds, with defaults for blanks', () => {
    expect(readMonitorSettings({})).toEqual(DEFAULT_MONITOR_SETTINGS);
    const s = readMonitorSettings({
      KUROKO_ASSIGNMENT_DELAY_SECONDS: '600',
      KUROKO_PROCESS_ABSENCE_SECONDS: ' ',
      KUROKO_WORKER_LOST_SECONDS: '90',
      KUROKO_MEMORY_FACTOR: '3',
      KUROKO_MEMORY_MIN_EXCESS_MB: '50',
    });
    expect(s).toMatchObject({ assignmentDelayMs: 600_000, processAbsenceMs: 30_000, workerLostMs: 90_000, memoryFactor: 3, memoryMinExcessKb: 50 * 1024 });
  });

  it('lists every bad threshold', () => {
    try {
      readMonitorSettings({ KUROKO_ASSIGNMENT_DELAY_SECONDS: 'soon', KUROKO_WORKER_LOST_SECONDS: '-1' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('KUROKO_ASSIGNMENT_DELAY_SECONDS');
      expect((error as Error).message).toContain('KUROKO_WORKER_LOST_SECONDS');
    }
  });

  it('reads the channel settings: base URL, Slack URL and webhook secret', () => {
    expect(readNotificationSettings({})).toEqual({ links: { baseUrl: 'http://localhost:3000' }, slackWebhookUrl: undefined, webhookSecret: undefined });
    expect(
      readNotificationSettings({ KUROKO_BASE_URL: 'https://k.example.com/', KUROKO_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/x', KUROKO_WEBHOOK_SECRET: 'abc' }),
    ).toEqual({ links: { baseUrl: 'https://k.example.com' }, slackWebhookUrl: 'https://hooks.slack.com/x', webhookSecret: 'abc' });
    expect(() => readNotificationSettings({ KUROKO_SLACK_WEBHOOK_URL: 'ftp://nope' })).toThrow(ConfigError);
  });
});

describe('memory expectancy', () => {
  const peaks = [
    { instanceId: 1, definitionId: 9, maxRssKb: 100 },
    { instanceId: 2, definitionId: 9, maxRssKb: 300 },
    { instanceId: 3, definitionId: 8, maxRssKb: 5_000 },
  ];
  it("is the largest peak of the definition's other instances", () => {
    expect(expectedPeakKb(peaks, 2, 9)).toBe(100);
    expect(expectedPeakKb(peaks, 1, 9)).toBe(300);
    expect(expectedPeakKb(peaks, 3, 8)).toBeUndefined();
  });
  it('is exceeded only by both the factor and the floor', () => {
    const settings = { memoryFactor: 2, memoryMinExcessKb: 100 };
    expect(exceedsExpectation(300, 100, settings)).toBe(true);
    expect(exceedsExpectation(199, 100, settings)).toBe(false);
    expect(exceedsExpectation(150, 50, settings)).toBe(true);
    expect(exceedsExpectation(140, 50, settings)).toBe(false);
  });
});
