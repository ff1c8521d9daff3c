/**
 * The configuration of `kuroko dev` and `kuroko server` that comes from the environment, one schema composed from
 * the shared fragments (notification channels, monitor thresholds, retention) plus the loops' own intervals. The
 * command (cli/dev-command.ts) adds its flags, API clients and console settings, and reports every problem at once.
 */
import { z } from 'zod';
import type { NotificationSettings } from '../../adapters/channels/notification-channels';
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import type { MonitorSettings } from '../../core/services/monitor-service';
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from '../../core/services/retention-service';
import type { Environment } from './config-schemas';
import { CUSTOM_TASKS_FIELD, customTasksShape, withCustomTasksField } from './custom-tasks-config';
import { ENV_KEYS } from './env-keys';
import { monitorShape, toMonitorSettings } from './monitor-settings';
import { notificationShape, toNotificationSettings } from './notification-settings';

const MS_PER_SECOND = 1000;
export const DEFAULT_MONITOR_INTERVAL_SECONDS = 10;
export const DEFAULT_AGENT_HEARTBEAT_SECONDS = 5;

const integer = (min: number, max: number, fallback: number) =>
  z.preprocess(
    (v) => v ?? fallback,
    z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );

const localEnvSchema = z
  .object({
    ...notificationShape,
    ...monitorShape,
    [ENV_KEYS.monitorIntervalSeconds]: integer(1, 3600, DEFAULT_MONITOR_INTERVAL_SECONDS),
    [ENV_KEYS.agentHeartbeatSeconds]: integer(1, 600, DEFAULT_AGENT_HEARTBEAT_SECONDS),
    [ENV_KEYS.retentionDays]: integer(0, MAX_RETENTION_DAYS, DEFAULT_RETENTION_DAYS),
    ...customTasksShape,
  })
  .transform((env) => {
    return {
      notification: toNotificationSettings(env),
      /** The base URL the variables set (links default to the runtime's own URL when unset). */
      baseUrl: env[ENV_KEYS.baseUrl],
      monitor: toMonitorSettings(env),
      monitorIntervalMs: env[ENV_KEYS.monitorIntervalSeconds] * MS_PER_SECOND,
      agentHeartbeatMs: env[ENV_KEYS.agentHeartbeatSeconds] * MS_PER_SECOND,
      retentionDays: env[ENV_KEYS.retentionDays],
      customTasks: env[CUSTOM_TASKS_FIELD],
    };
  });

export interface LocalEnvConfig {
  notification: NotificationSettings;
  baseUrl: string | undefined;
  monitor: MonitorSettings;
  monitorIntervalMs: number;
  agentHeartbeatMs: number;
  retentionDays: number;
  customTasks: CustomTasks;
}

/** Reads the local mode's environment: the settings, or every problem as `VARIABLE: message` lines. */
export function readLocalEnv(env: Environment): { config: LocalEnvConfig; problems: [] } | { config: undefined; problems: string[] } {
  const result = localEnvSchema.safeParse(withCustomTasksField(env));
  if (result.success) return { config: result.data, problems: [] };
  return { config: undefined, problems: result.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)) };
}
