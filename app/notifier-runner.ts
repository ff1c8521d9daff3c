/** Notifier passes over one database: the store and the channels wired together. */
import type { Kysely } from 'kysely';
import type { NotificationChannel } from '../core/notify/notification-channel';
import type { Clock, IdGenerator } from '../core/ports';
import { runNotifierPass, type NotifierDeps, type NotifierPassResult, type NotifierSettings } from '../core/services/notifier-service';
import { EventDeliveryRepository } from '../db/repositories/event-delivery-repository';
import type { Database } from '../db/schema';

/** What a composition root needs to run notifier passes over one database. */
export interface NotifierRunnerOptions {
  db: Kysely<Database>;
  clock: Clock;
  ids: IdGenerator;
  channels: readonly NotificationChannel[];
  settings?: Partial<NotifierSettings>;
  onError?: NotifierDeps['onError'];
}

/** A function running one notifier pass over the database with the given channels. */
export function createNotifierRunner(options: NotifierRunnerOptions): () => Promise<NotifierPassResult> {
  const store = new EventDeliveryRepository(options.db);
  return () =>
    runNotifierPass({
      store,
      channels: options.channels,
      clock: options.clock,
      ids: options.ids,
      ...(options.settings ? { settings: options.settings } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    });
}
