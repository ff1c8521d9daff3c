import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors';
import { DEPLOY_CONFIG_ENV, architectureOfInstanceType, consoleOidcOf, loadDeployConfig, parseDeployConfig } from '../cdk/deploy-config';

const dir = mkdtempSync(join(tmpdir(), 'kuroko-deploy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const problemsOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('deploy config', () => {
  it('has defaults that synthesise: a new VPC, one @default arm64 queue, Aurora paused at 0 ACU', () => {
    const config = parseDeployConfig({});
    expect(config).toMatchObject({
      stageName: 'dev',
      vpc: { mode: 'new', maxAzs: 2 },
      workerQueues: [{ name: '@default', architecture: 'arm64', instanceType: 't4g.small', minInstances: 0 }],
      aurora: { minCapacity: 0, maxCapacity: 4, deletionProtection: true, removalPolicy: 'snapshot' },
      logRetentionDays: 30,
    });
    expect(config.alertEmail).toBeUndefined();
  });

  it('lists every problem at once, with its path', () => {
    const message = problemsOf(() =>
      parseDeployConfig({
        stageName: 'Prod',
        alertEmail: 'nobody',
        workerQueues: [
          { name: 'a b', minInstances: 3, maxInstances: 1 },
          { name: 'x', instanceType: 'm7g.large', architecture: 'x86_64' },
        ],
        aurora: { minCapacity: 0.3, maxCapacity: 512 },
        logRetentionDays: 2,
        typo: true,
      }),
    );
    for (const expected of [
      'stageName:',
      'alertEmail:',
      'workerQueues.0.name: is not a queue name',
      'workerQueues.0.minInstances: must not exceed maxInstances',
      'workerQueues.1.architecture: m7g.large is arm64, not x86_64',
      'aurora.minCapacity: must be a multiple of 0.5 ACU',
      'aurora.maxCapacity:',
      'logRetentionDays: must be one of',
      'Unrecognized key: "typo"',
    ]) {
      expect(message).toContain(expected);
    }
  });

  it('rejects duplicate queue names and misspelt nested keys', () => {
    const message = problemsOf(() => parseDeployConfig({ workerQueues: [{ name: 'q' }, { name: 'q', minInstance: 1 }] }));
    expect(message).toContain('queue names must be unique');
    expect(message).toContain('Unrecognized key: "minInstance"');
  });

  it('needs two database subnets and a VPC id to use an existing VPC', () => {
    const message = problemsOf(() =>
      parseDeployConfig({ vpc: { mode: 'existing', vpcId: 'vpc-0a', availabilityZones: ['a', 'b'], databaseSubnetIds: ['subnet-01'], workerSubnetIds: [] } }),
    );
    expect(message).toContain('vpc.databaseSubnetIds');
    expect(message).toContain('vpc.workerSubnetIds');
  });

  it('leaves the console off unless OIDC is configured, and then needs every OIDC setting', () => {
    expect(consoleOidcOf(parseDeployConfig({}).console)).toBeUndefined();
    expect(consoleOidcOf(parseDeployConfig({ console: { admins: ['ops@example.com'] } }).console)).toBeUndefined();
    const message = problemsOf(() => parseDeployConfig({ console: { oidcIssuer: 'https://accounts.google.com' } }));
    expect(message).toContain('console.oidcClientId: is required');
    expect(message).toContain('console.oidcClientSecretArn: is required');
    expect(message).toContain('console.allowedDomains: is required');
    const settings = {
      oidcIssuer: 'https://accounts.google.com',
      oidcClientId: 'client-1',
      oidcClientSecretArn: 'kuroko/oidc-client',
      allowedDomains: ['example.com'],
    };
    expect(consoleOidcOf(parseDeployConfig({ console: settings }).console)).toEqual({ ...settings, admins: [], allowUnverifiedEmail: false });
  });

  it('takes the OIDC client secret by complete ARN or by name, never a partial ARN or an http issuer', () => {
    const base = { oidcIssuer: 'https://accounts.google.com', oidcClientId: 'c', allowedDomains: ['*'] };
    const complete = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/oidc-AbC123';
    expect(parseDeployConfig({ console: { ...base, oidcClientSecretArn: complete } }).console.oidcClientSecretArn).toBe(complete);
    const partial = problemsOf(() => parseDeployConfig({ console: { ...base, oidcClientSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/oidc' } }));
    expect(partial).toContain('console.oidcClientSecretArn: is neither the complete ARN');
    // The Slack webhook URL's secret follows the same rule.
    expect(parseDeployConfig({ notifications: { slackWebhookUrlSecret: 'kuroko/slack' } }).notifications.slackWebhookUrlSecret).toBe('kuroko/slack');
    expect(parseDeployConfig({}).notifications).toEqual({});
    expect(problemsOf(() => parseDeployConfig({ notifications: { slackWebhookUrlSecret: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/slack' } }))).toContain(
      'notifications.slackWebhookUrlSecret: is neither the complete ARN',
    );
    const insecure = problemsOf(() => parseDeployConfig({ console: { ...base, oidcIssuer: 'http://idp.example.com', oidcClientSecretArn: 'x', admins: ['nobody'], allowedDomains: ['not a domain'] } }));
    expect(insecure).toContain('console.oidcIssuer:');
    expect(insecure).toContain('console.admins.0:');
    expect(insecure).toContain('console.allowedDomains.0: is not an email domain');
  });

  it('tells Graviton instance types from x86 ones', () => {
    expect(architectureOfInstanceType('t4g.small')).toBe('arm64');
    expect(architectureOfInstanceType('c7gn.xlarge')).toBe('arm64');
    expect(architectureOfInstanceType('x2gd.large')).toBe('arm64');
    expect(architectureOfInstanceType('g5.xlarge')).toBe('x86_64');
    expect(architectureOfInstanceType('m7i.large')).toBe('x86_64');
    // a1 is Graviton (https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html: "A1: AWS Graviton processors").
    expect(architectureOfInstanceType('a1.large')).toBe('arm64');
    expect(problemsOf(() => parseDeployConfig({ workerQueues: [{ name: 'q', instanceType: 'a1.medium', architecture: 'x86_64' }] }))).toContain('a1.medium is arm64');
  });
});

describe('loading the deploy config', () => {
  it('uses the defaults when no file is named', () => {
    expect(loadDeployConfig({ contextPath: undefined, env: {} }).stageName).toBe('dev');
  });

  it('reads the file named by the `config` context value before KUROKO_DEPLOY_CONFIG', () => {
    const fromContext = file('context.json', JSON.stringify({ stageName: 'ctx' }));
    const fromEnv = file('env.json', JSON.stringify({ stageName: 'env' }));
    expect(loadDeployConfig({ contextPath: fromContext, env: { [DEPLOY_CONFIG_ENV]: fromEnv } }).stageName).toBe('ctx');
    expect(loadDeployConfig({ contextPath: undefined, env: { [DEPLOY_CONFIG_ENV]: fromEnv } }).stageName).toBe('env');
  });

  it('names the file in every problem', () => {
    const bad = file('bad.json', JSON.stringify({ logRetentionDays: 2 }));
    expect(problemsOf(() => loadDeployConfig({ contextPath: bad, env: {} }))).toContain(`${bad}: logRetentionDays`);
    const broken = file('broken.json', '{ not json');
    expect(problemsOf(() => loadDeployConfig({ contextPath: broken, env: {} }))).toContain(`${broken}: is not valid JSON`);
    expect(problemsOf(() => loadDeployConfig({ contextPath: join(dir, 'missing.json'), env: {} }))).toContain('cannot be read');
  });
});
