import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors';
import { ENV_KEYS } from '../app/config/env-keys';
import { parseAgentParameter } from '../app/config/config-schemas';
import {
  parseApiConfig,
  parseMigratorConfig,
  parseNotifierConfig,
  parseProcessorConfig,
  parseProvisionerConfig,
  parseSchedulerConfig,
} from '../app/config/config';

const CLUSTER = 'arn:aws:rds:us-east-1:123456789012:cluster:kuroko';
const SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko-AbCdEf';
const base = {
  [ENV_KEYS.stage]: 'dev',
  [ENV_KEYS.dbClusterArn]: CLUSTER,
  [ENV_KEYS.dbSecretArn]: SECRET,
  [ENV_KEYS.dbName]: 'kuroko',
};
const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('Lambda configuration', () => {
  it('reads the database binding every function shares', () => {
    expect(parseProcessorConfig(base)).toEqual({
      stage: 'dev',
      logLevel: 'INFO',
      database: { clusterArn: CLUSTER, secretArn: SECRET, databaseName: 'kuroko' },
      notifierFunctionName: undefined,
      doorbellQueueUrl: undefined,
      // Every Lambda's schema now carries the idle-sleep parameter and the custom tasks (one schema per process).
      sleepParameter: undefined,
      customTasks: new Map(),
    });
    expect(parseSchedulerConfig({ ...base, [ENV_KEYS.processorFunction]: 'p' }).processorFunctionName).toBe('p');
  });

  it('lists every missing or malformed variable by name', () => {
    const message = messageOf(() =>
      parseNotifierConfig({ [ENV_KEYS.dbClusterArn]: SECRET, [ENV_KEYS.powertoolsLogLevel]: 'LOUD', [ENV_KEYS.webhookSecretParameter]: 'webhook-key' }),
    );
    for (const expected of [
      `${ENV_KEYS.stage}: is required`,
      `${ENV_KEYS.dbClusterArn}: must be an ARN of rds`,
      `${ENV_KEYS.dbSecretArn}: is required`,
      `${ENV_KEYS.dbName}: is required`,
      `${ENV_KEYS.alertTopicArn}: is required`,
      `${ENV_KEYS.metricsNamespace}: is required`,
      `${ENV_KEYS.powertoolsLogLevel}:`,
      `${ENV_KEYS.webhookSecretParameter}: must be an SSM parameter name`,
    ]) {
      expect(message).toContain(expected);
    }
  });

  it('decodes and validates the provisioner queue list', () => {
    const queues = [{ name: '@default', launchTemplateId: 'lt-1', subnetIds: ['subnet-1'], slotsPerWorker: 2, minInstances: 0, maxInstances: 2, idleMinutes: 10 }];
    expect(parseProvisionerConfig({ ...base, [ENV_KEYS.workerQueues]: JSON.stringify(queues) }).workerQueues).toEqual(queues);
    expect(messageOf(() => parseProvisionerConfig({ ...base, [ENV_KEYS.workerQueues]: '[{' }))).toContain(`${ENV_KEYS.workerQueues}: is not valid JSON`);
    const bad = [{ ...queues[0], minInstances: 3 }];
    expect(messageOf(() => parseProvisionerConfig({ ...base, [ENV_KEYS.workerQueues]: JSON.stringify(bad) }))).toContain('minInstances must not exceed maxInstances');
  });

  it('gives the api its declared queues and nudge targets', () => {
    const config = parseApiConfig({ ...base, [ENV_KEYS.declaredQueues]: '["@default","build"]', [ENV_KEYS.processorFunction]: 'p', [ENV_KEYS.notifierFunction]: 'n' });
    expect(config).toMatchObject({ declaredQueues: ['@default', 'build'], processorFunctionName: 'p', notifierFunctionName: 'n' });
    expect(parseApiConfig(base).declaredQueues).toEqual([]);
  });

  it('binds the api to the console only when an OIDC issuer is set, and then needs every console variable', () => {
    expect(parseApiConfig({ ...base, [ENV_KEYS.baseUrl]: 'https://api.example.com/' }).console).toBeUndefined();
    const message = messageOf(() => parseApiConfig({ ...base, [ENV_KEYS.oidcIssuer]: 'https://accounts.google.com' }));
    for (const key of [ENV_KEYS.consoleSecretArn, ENV_KEYS.oidcClientId, ENV_KEYS.oidcClientSecretArn, ENV_KEYS.baseUrl, ENV_KEYS.oidcAllowedDomains]) {
      expect(message).toContain(`${key}: is required with ${ENV_KEYS.oidcIssuer}`);
    }
    const config = parseApiConfig({
      ...base,
      [ENV_KEYS.oidcIssuer]: 'https://accounts.google.com',
      [ENV_KEYS.oidcClientId]: 'client-1',
      [ENV_KEYS.oidcClientSecretArn]: SECRET,
      [ENV_KEYS.consoleSecretArn]: SECRET,
      [ENV_KEYS.oidcAllowedDomains]: 'example.com, example.org',
      [ENV_KEYS.consoleAdmins]: 'ops@example.com',
      [ENV_KEYS.baseUrl]: 'https://api.example.com/',
    });
    expect(config.console).toEqual({
      signingSecretArn: SECRET,
      oidcIssuer: 'https://accounts.google.com',
      oidcClientId: 'client-1',
      oidcClientSecretArn: SECRET,
      allowedDomains: ['example.com', 'example.org'],
      admins: ['ops@example.com'],
      // Normalised as the console reads it: the API Gateway URL output ends in a slash, the console's links do not.
      baseUrl: 'https://api.example.com',
    });
    expect(messageOf(() => parseApiConfig({ ...base, [ENV_KEYS.oidcIssuer]: 'https://i', [ENV_KEYS.oidcClientSecretArn]: 'plain-secret' }))).toContain(
      `${ENV_KEYS.oidcClientSecretArn}: must be an ARN of secretsmanager`,
    );
  });

  it('accepts the optional admin client and webhook key parameters for the migrator, as parameter names', () => {
    const names = { [ENV_KEYS.apiClientsParameter]: '/kuroko/dev/admin-api-client', [ENV_KEYS.webhookSecretParameter]: '/kuroko/dev/webhook-signing-key' };
    expect(parseMigratorConfig({ ...base, ...names })).toMatchObject({ apiClientsParameter: '/kuroko/dev/admin-api-client', webhookSecretParameter: '/kuroko/dev/webhook-signing-key' });
    // An ARN (or a secret's) is not a name GetParameter and the grants agree on.
    expect(messageOf(() => parseMigratorConfig({ ...base, [ENV_KEYS.apiClientsParameter]: SECRET }))).toContain('must be an SSM parameter name');
  });

  it('reads the agent parameter JSON that the WorkersStack writes', () => {
    const parameter = {
      stage: 'dev',
      region: 'us-east-1',
      database: { clusterArn: CLUSTER, secretArn: SECRET, databaseName: 'kuroko' },
      queue: '@default',
      slots: 2,
      idleMinutes: 10,
      executionLogGroupName: 'Kuroko-dev-Engine-ExecutionLogs',
      processorFunctionName: 'Kuroko-dev-Engine-Processor',
    };
    expect(parseAgentParameter(JSON.stringify(parameter))).toEqual(parameter);
    expect(messageOf(() => parseAgentParameter(JSON.stringify({ ...parameter, slots: 0, queue: 'a b' })))).toMatch(/slots[\s\S]*queue|queue[\s\S]*slots/);
  });
});
