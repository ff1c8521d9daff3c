/** KUROKO_RETENTION_DAYS: the global retention policy, for the local mode and `kuroko server`, and the Lambda config. */
import { describe, expect, it } from 'vitest';
import { parseLocalModeOptions } from '../../../cli/dev-command';
import { ENV_KEYS } from '../../../app/config/env-keys';
import { parseRetentionConfig } from '../../../app/config/config';

const base = {
  [ENV_KEYS.stage]: 'dev',
  [ENV_KEYS.dbClusterArn]: 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko',
  [ENV_KEYS.dbSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-AbCdEf',
  [ENV_KEYS.dbName]: 'kuroko',
};
const server = (env: Record<string, string>) =>
  parseLocalModeOptions('server', ['--database-url', 'mysql://root@127.0.0.1:3306/kuroko'], { KUROKO_CONSOLE_SECRET: 'a-console-secret-for-tests-only-0123456789', ...env });

describe('KUROKO_RETENTION_DAYS', () => {
  it('defaults to 90 days; 0 keeps forever', () => {
    expect(parseRetentionConfig(base).retentionDays).toBe(90);
    expect(parseRetentionConfig({ ...base, KUROKO_RETENTION_DAYS: '30' }).retentionDays).toBe(30);
    expect(parseRetentionConfig({ ...base, KUROKO_RETENTION_DAYS: '0' }).retentionDays).toBe(0);
    expect(server({}).retentionDays).toBe(90);
    expect(server({ KUROKO_RETENTION_DAYS: '7' }).retentionDays).toBe(7);
  });

  it('refuses negative, fractional and non-numeric values by name', () => {
    for (const value of ['-1', '1.5', 'soon', '36501']) {
      expect(() => parseRetentionConfig({ ...base, KUROKO_RETENTION_DAYS: value })).toThrow(/KUROKO_RETENTION_DAYS/);
      expect(() => server({ KUROKO_RETENTION_DAYS: value })).toThrow(/KUROKO_RETENTION_DAYS/);
    }
  });
});
