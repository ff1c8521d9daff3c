/**
 * The monitor's thresholds as a configuration fragment: the monitor Lambda's schema (config.ts) and the local mode's
 * (local-config.ts) both include it, so a bad threshold is reported with every other problem of the deploy.
 */
import { z } from 'zod';
import { DEFAULT_MONITOR_SETTINGS, type MonitorSettings } from '../../core/services/monitor-service';
import { parseWith, type Environment } from './config-schemas';
import { MONITOR_ENV_KEYS } from './env-keys';

const SECOND_MS = 1_000;
const KB_PER_MB = 1_024;

/** Blank counts as unset (a deploy tool that writes empty variables means "the default"). */
export const blankAsUnset = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const optionalNumber = <T extends z.ZodType<number, unknown>>(schema: T) => z.preprocess(blankAsUnset, schema.optional());
const seconds = optionalNumber(z.coerce.number().int().positive());

export const monitorShape = {
  [MONITOR_ENV_KEYS.assignmentDelaySeconds]: seconds,
  [MONITOR_ENV_KEYS.noPidSeconds]: seconds,
  [MONITOR_ENV_KEYS.processAbsenceSeconds]: seconds,
  [MONITOR_ENV_KEYS.workerLostSeconds]: seconds,
  [MONITOR_ENV_KEYS.memoryFactor]: optionalNumber(z.coerce.number().min(1)),
  [MONITOR_ENV_KEYS.memoryMinExcessMb]: optionalNumber(z.coerce.number().min(0)),
};
type MonitorEnv = z.infer<z.ZodObject<typeof monitorShape>>;

/** The thresholds the variables set, the defaults for the rest. */
export function toMonitorSettings(env: MonitorEnv): MonitorSettings {
  const d = DEFAULT_MONITOR_SETTINGS;
  const ms = (value: number | undefined, fallback: number) => (value === undefined ? fallback : value * SECOND_MS);
  const excessMb = env[MONITOR_ENV_KEYS.memoryMinExcessMb];
  return {
    ...d,
    assignmentDelayMs: ms(env[MONITOR_ENV_KEYS.assignmentDelaySeconds], d.assignmentDelayMs),
    noPidMs: ms(env[MONITOR_ENV_KEYS.noPidSeconds], d.noPidMs),
    processAbsenceMs: ms(env[MONITOR_ENV_KEYS.processAbsenceSeconds], d.processAbsenceMs),
    workerLostMs: ms(env[MONITOR_ENV_KEYS.workerLostSeconds], d.workerLostMs),
    memoryFactor: env[MONITOR_ENV_KEYS.memoryFactor] ?? d.memoryFactor,
    memoryMinExcessKb: excessMb === undefined ? d.memoryMinExcessKb : excessMb * KB_PER_MB,
  };
}

const monitorSettingsSchema = z.object(monitorShape).transform(toMonitorSettings);

/** Reads the thresholds alone; throws a ConfigError listing every problem. */
export const readMonitorSettings = (env: Environment): MonitorSettings => parseWith(monitorSettingsSchema, env, 'monitor');
