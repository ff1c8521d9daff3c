/** The port every notification channel implements (SNS, Slack, the definition's webhook, the console). */
import type { NotificationInput } from './notification-message';
import type { ChannelKind } from './notification-rules';

/** One attempt to hand one event to one channel. */
export interface Delivery {
  input: NotificationInput;
  /**
   * Stable for the (event, channel) pair across every attempt and every notifier: receivers dedupe on it (the
   * webhook sends it as `X-Kuroko2-Id`).
   */
  deliveryKey: string;
  /** 1 for the first attempt. */
  attempt: number;
}

export interface NotificationChannel {
  /** Keys the delivery rows: each event reaches a channel of this name at most once when all goes well. */
  readonly name: string;
  readonly kind: ChannelKind;
  /**
   * Sends or throws. Implementations bound their own time (an HTTP timeout well below the notifier's claim
   * timeout), so a hung receiver costs one attempt, not the pass.
   */
  send(delivery: Delivery): Promise<void>;
}

/** The key of one event on one channel. */
export function deliveryKeyOf(eventId: number, channel: string): string {
  return `${eventId}:${channel}`;
}
