/**
 * A bad deploy is reported all at once: every process parses its whole configuration (shared fragments included:
 * monitor thresholds, notification channels, custom tasks) in one schema, so several bad variables give one
 * ConfigError naming each of them, not the first of them one deploy at a time.
 */
import { describe, expect, it } from 'vitest';
import { parseMonitorConfig, parseNotifierConfig, parseProcessorConfig } from '../../../app/config/config';
import { readLocalEnv } from '../../../app/config/local-config';
import { CUSTOM_TASKS_ENV, ENV_KEYS } from '../../../app/config/env-keys';
import { DEFAULT_MONITOR_SETTINGS } from '../../../core/services/monitor-service';
import { ConfigError } from '../../../core/errors';

const base = {
  [ENV_KEYS.stage]: 'dev',
  [ENV_KEYS.dbClusterArn]: 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko',
  [ENV_KEYS.dbSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-AbCdEf',
  [ENV_KEYS.dbName]: 'kuroko',
};

/** The ConfigError `parse` throws. */
function configError(parse: () => unknown): ConfigError {
  try {
    parse();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('a bad deploy', () => {
  it('lists every bad variable of the monitor in one ConfigError: base, thresholds and custom tasks together', () => {
    const error = configError(() =>
      parseMonitorConfig({
        ...base,
        [ENV_KEYS.dbName]: 'not a name',
        [ENV_KEYS.assignmentDelaySeconds]: 'soon',
        [ENV_KEYS.workerLostSeconds]: '-1',
        [ENV_KEYS.memoryFactor]: '0.5',
        [CUSTOM_TASKS_ENV.json]: '{not json',
      }),
    );
    expect(error.problems).toHaveLength(5);
    for (const key of [ENV_KEYS.dbName, ENV_KEYS.assignmentDelaySeconds, ENV_KEYS.workerLostSeconds, ENV_KEYS.memoryFactor, CUSTOM_TASKS_ENV.json]) {
      expect(error.message).toContain(key);
    }
  });

  it('gives the monitor its thresholds typed, with the defaults for blank and unset variables', () => {
    const config = parseMonitorConfig({ ...base, [ENV_KEYS.assignmentDelaySeconds]: '600', [ENV_KEYS.noPidSeconds]: ' ' });
    expect(config.monitor).toEqual({ ...DEFAULT_MONITOR_SETTINGS, assignmentDelayMs: 600_000 });
  });

  it('checks the notifier channels with the notifier, and custom tasks with every function', () => {
    const notifier = configError(() =>
      parseNotifierConfig({ ...base, [ENV_KEYS.alertTopicArn]: 'nope', [ENV_KEYS.metricsNamespace]: 'Kuroko', [ENV_KEYS.slackWebhookUrl]: 'ftp://x', [ENV_KEYS.baseUrl]: 'not a url' }),
    );
    expect(notifier.problems.map((p) => p.split(':')[0]).sort()).toEqual([ENV_KEYS.alertTopicArn, ENV_KEYS.baseUrl, ENV_KEYS.slackWebhookUrl].sort());
    const processor = configError(() =>
      parseProcessorConfig({ ...base, [CUSTOM_TASKS_ENV.json]: '{}', [CUSTOM_TASKS_ENV.file]: '/tmp/tasks.json', [ENV_KEYS.stage]: '' }),
    );
    expect(processor.problems).toHaveLength(2);
    expect(processor.message).toContain(ENV_KEYS.stage);
    expect(processor.message).toContain(`set ${CUSTOM_TASKS_ENV.json} or ${CUSTOM_TASKS_ENV.file}, not both`);
  });

  it('lists every bad variable of the local mode at once', () => {
    const { problems } = readLocalEnv({
      [ENV_KEYS.monitorIntervalSeconds]: '0',
      [ENV_KEYS.agentHeartbeatSeconds]: 'often',
      [ENV_KEYS.retentionDays]: '-1',
      [ENV_KEYS.processAbsenceSeconds]: '1.5',
      [ENV_KEYS.slackWebhookUrl]: 'ftp://x',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      [ENV_KEYS.monitorIntervalSeconds, ENV_KEYS.agentHeartbeatSeconds, ENV_KEYS.retentionDays, ENV_KEYS.processAbsenceSeconds, ENV_KEYS.slackWebhookUrl].sort(),
    );
  });
});
