import { describe, expect, it } from 'vitest';
import { EVENT_TYPE, type EventType } from '../../../core/model';
import { CHANNEL_KIND, channelCarries, levelOf, type ChannelKind, type GatingDefinition } from '../../../core/notify/notification-rules';

/**
 * Spec section 7 written out as a table, one row per event, one column per channel kind:
 * always / never / all ("notify all events") / cancel-or-all / cancel (notify_cancellation) / instance (the event
 * concerns an instance of the definition).
 */
type Rule = 'always' | 'never' | 'all' | 'cancel-or-all' | 'cancel' | 'instance';
const TABLE: Record<EventType, Record<Exclude<ChannelKind, 'console'>, Rule>> = {
  launch: { slack: 'all', webhook: 'all', sns: 'never' },
  retrying: { slack: 'all', webhook: 'all', sns: 'never' },
  skipping: { slack: 'all', webhook: 'all', sns: 'never' },
  finished: { slack: 'all', webhook: 'all', sns: 'never' },
  cancellation: { slack: 'cancel-or-all', webhook: 'cancel-or-all', sns: 'cancel' },
  failure: { slack: 'always', webhook: 'always', sns: 'always' },
  critical: { slack: 'always', webhook: 'always', sns: 'always' },
  back_to_normal: { slack: 'always', webhook: 'always', sns: 'never' },
  long_elapsed_time: { slack: 'always', webhook: 'always', sns: 'always' },
  not_assigned: { slack: 'never', webhook: 'instance', sns: 'always' },
  process_absence: { slack: 'never', webhook: 'instance', sns: 'always' },
  worker_lost: { slack: 'never', webhook: 'instance', sns: 'always' },
  missed_slot: { slack: 'never', webhook: 'instance', sns: 'always' },
  remind_failure: { slack: 'never', webhook: 'instance', sns: 'always' },
  memory_exceeded: { slack: 'never', webhook: 'instance', sns: 'always' },
};

const LEVELS: Record<EventType, string> = {
  launch: 'INFO',
  retrying: 'INFO',
  skipping: 'INFO',
  finished: 'SUCCESS',
  cancellation: 'WARNING',
  failure: 'FAILURE',
  critical: 'CRITICAL',
  back_to_normal: 'SUCCESS',
  long_elapsed_time: 'WARNING',
  not_assigned: 'CRITICAL',
  process_absence: 'CRITICAL',
  worker_lost: 'CRITICAL',
  missed_slot: 'WARNING',
  remind_failure: 'WARNING',
  memory_exceeded: 'WARNING',
};

function expected(rule: Rule, d: GatingDefinition, hasInstance: boolean): boolean {
  switch (rule) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'all':
      return d.notifyAll;
    case 'cancel-or-all':
      return d.notifyAll || d.notifyCancellation;
    case 'cancel':
      return d.notifyCancellation;
    case 'instance':
      return hasInstance;
  }
}

const ALL_EVENTS = Object.values(EVENT_TYPE);
const FLAG_COMBOS = [false, true].flatMap((notifyAll) => [false, true].map((notifyCancellation) => ({ notifyAll, notifyCancellation })));

describe('gating per channel (spec section 7)', () => {
  it('covers every event type in the table', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...ALL_EVENTS].sort());
  });

  for (const type of ALL_EVENTS) {
    describe(type, () => {
      it(`announces it at level ${LEVELS[type]}`, () => {
        expect(levelOf(type)).toBe(LEVELS[type]);
      });

      for (const flags of FLAG_COMBOS) {
        for (const hasInstance of [true, false]) {
          const d: GatingDefinition = { ...flags, slackChannel: '#ops', webhookUrl: 'https://hooks.example/x' };
          const label = `notifyAll=${flags.notifyAll} notifyCancellation=${flags.notifyCancellation} instance=${hasInstance}`;
          const event = { type, instanceId: hasInstance ? 7 : null };
          it(`sns, slack, webhook and console with ${label}`, () => {
            expect(channelCarries(CHANNEL_KIND.sns, event, d)).toBe(expected(TABLE[type].sns, d, hasInstance));
            expect(channelCarries(CHANNEL_KIND.slack, event, d)).toBe(expected(TABLE[type].slack, d, hasInstance));
            expect(channelCarries(CHANNEL_KIND.webhook, event, d)).toBe(expected(TABLE[type].webhook, d, hasInstance));
            expect(channelCarries(CHANNEL_KIND.console, event, d)).toBe(true);
          });
        }
      }

      it('needs a slack channel for Slack and a URL for the webhook', () => {
        const d: GatingDefinition = { notifyAll: true, notifyCancellation: true, slackChannel: '  ', webhookUrl: null };
        expect(channelCarries(CHANNEL_KIND.slack, { type, instanceId: 1 }, d)).toBe(false);
        expect(channelCarries(CHANNEL_KIND.webhook, { type, instanceId: 1 }, d)).toBe(false);
      });

      it('without a definition: only the mail-like channel (never cancellation) and the console', () => {
        const event = { type, instanceId: 1 };
        expect(channelCarries(CHANNEL_KIND.slack, event, undefined)).toBe(false);
        expect(channelCarries(CHANNEL_KIND.webhook, event, undefined)).toBe(false);
        const mail = TABLE[type].sns === 'always';
        expect(channelCarries(CHANNEL_KIND.sns, event, undefined)).toBe(mail);
        expect(channelCarries(CHANNEL_KIND.console, event, undefined)).toBe(true);
      });
    });
  }
});
