import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ENV_KEYS, OUTBOX_METRIC } from '../app/config/env-keys';
import { INITIAL_SLEEP_VALUE } from '../adapters/aws/sleep-gate';
import { API_ROUTES, TICKING_FUNCTIONS } from '../cdk/stacks/engine-stack';
import { iamStatements } from './helpers/iam-statements';
import { migrationsFingerprint } from '../cdk/migration-trigger';
import { TEST_CONSOLE, TEST_EMAIL, logicalId, synthKuroko } from './helpers/synth-app';

const built = synthKuroko();
const { engine: stack, templates } = built;
const engine = templates.engine;
const fnIds = Object.fromEntries(Object.entries(stack.functions).map(([name, fn]) => [name, logicalId(stack, fn)]));

type LambdaResource = { Properties: Record<string, unknown> & { Environment: { Variables: Record<string, unknown> } } };
const lambdaProps = (id: string | undefined): LambdaResource['Properties'] =>
  (engine.toJSON() as { Resources: Record<string, LambdaResource> }).Resources[id ?? '']!.Properties;

describe('EngineStack: functions', () => {
  it('builds the seven engine functions on Node.js 22, arm64, outside any VPC', () => {
    expect(Object.keys(fnIds).sort()).toEqual(['api', 'migrator', 'monitor', 'notifier', 'processor', 'retention', 'scheduler']);
    for (const id of Object.values(fnIds)) {
      const props = lambdaProps(id);
      expect(props['Runtime']).toBe('nodejs22.x');
      expect(props['Architectures']).toEqual(['arm64']);
      expect(props['VpcConfig']).toBeUndefined();
    }
  });

  it('gives every function the Data API variables, Powertools settings and source maps', () => {
    for (const [name, id] of Object.entries(fnIds)) {
      // Only the migrator signs in as the master; every other function as the runtime user (issue 13).
      const db = name === 'migrator' ? built.data.database : built.data.runtimeDatabase;
      const env = lambdaProps(id).Environment.Variables;
      expect(env[ENV_KEYS.dbClusterArn]).toEqual(stack.resolve(db.clusterArn));
      expect(env[ENV_KEYS.dbSecretArn]).toEqual(stack.resolve(db.secretArn));
      expect(env[ENV_KEYS.dbName]).toBe('kuroko');
      expect(env[ENV_KEYS.powertoolsServiceName]).toBe(`kuroko-${name}`);
      expect(env[ENV_KEYS.nodeOptions]).toBe('--enable-source-maps');
      expect(env[ENV_KEYS.stage]).toBe('dev');
    }
  });

  it('does not retry asynchronous invocations (the next tick covers a failed one)', () => {
    for (const id of Object.values(fnIds)) {
      engine.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: id },
        MaximumRetryAttempts: 0,
      });
    }
  });

  it('writes each function log to its own group with the configured retention', () => {
    for (const id of Object.values(fnIds)) {
      const logGroup = lambdaProps(id)['LoggingConfig'] as { LogGroup: { Ref: string } };
      engine.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 30 } });
      expect(Object.keys(engine.findResources('AWS::Logs::LogGroup'))).toContain(logGroup.LogGroup.Ref);
    }
  });
});

describe('EngineStack: schedules', () => {
  it.each(TICKING_FUNCTIONS)('runs the %s every minute', (name) => {
    engine.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fnIds[name], 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } })],
    });
    engine.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fnIds[name], 'Arn'] },
    });
  });

  it('runs the retention pass once a day on its own schedule, with the global policy of the deploy config', () => {
    engine.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 4 * * ? *)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fnIds['retention'], 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 3600 } })],
    });
    const props = lambdaProps(fnIds['retention']!);
    expect(props['Timeout']).toBe(900);
    expect(props.Environment.Variables[ENV_KEYS.retentionDays]).toBe('90');
    const custom = synthKuroko({ retention: { days: 30, hourUtc: 22 } });
    const customId = logicalId(custom.engine, custom.engine.functions.retention);
    custom.templates.engine.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'cron(0 22 * * ? *)' });
    expect(custom.templates.engine.toJSON().Resources[customId].Properties.Environment.Variables[ENV_KEYS.retentionDays]).toBe('30');
  });

  it('schedules nothing else (the api and the migrator are not ticks; retention has its daily rule)', () => {
    engine.resourceCountIs('AWS::Events::Rule', TICKING_FUNCTIONS.length + 1);
  });
});

describe('EngineStack: nudges', () => {
  const invokeGrants = (fnName: string) =>
    iamStatements(engine)
      .filter((s) => s.actions.includes('lambda:InvokeFunction'))
      .filter((s) => s.roles.includes(logicalId(stack, stack.functions[fnName as keyof typeof stack.functions].executionRole)));
  const arnOf = (name: string) => ({ 'Fn::GetAtt': [fnIds[name], 'Arn'] });

  it.each([
    ['api', ['processor', 'notifier']],
    // The retention function: the scheduler starts an owed pass in a wake (issue 17; idle sleep is on by default).
    ['scheduler', ['processor', 'retention']],
    ['processor', ['notifier']],
    ['monitor', ['processor', 'notifier']],
    ['notifier', []],
    ['migrator', []],
  ])('lets the %s invoke exactly %j', (caller, targets) => {
    const resources = invokeGrants(caller).flatMap((s) => s.resources);
    expect(resources).toEqual(targets.map(arnOf));
    for (const target of targets) {
      const key = target === 'processor' ? ENV_KEYS.processorFunction : target === 'retention' ? ENV_KEYS.retentionFunction : ENV_KEYS.notifierFunction;
      expect(lambdaProps(fnIds[caller]).Environment.Variables[key]).toEqual({ Ref: fnIds[target] });
    }
  });
});

describe('EngineStack: HTTP API', () => {
  it.each(API_ROUTES.map((r) => `${r.method} ${r.path}`))('routes %s to the api function', (routeKey) => {
    const integrations = engine.findResources('AWS::ApiGatewayV2::Integration', {
      Properties: { IntegrationUri: { 'Fn::GetAtt': [fnIds['api'], 'Arn'] }, PayloadFormatVersion: '2.0' },
    });
    const [integrationId] = Object.keys(integrations);
    expect(integrationId).toBeDefined();
    engine.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: routeKey,
      Target: { 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] },
    });
  });

  it('has exactly the listed routes, including the v1 health check and the console', () => {
    const keys = Object.values(engine.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => (r as { Properties: { RouteKey: string } }).Properties.RouteKey,
    );
    expect(keys.sort()).toEqual(['ANY /v1/{proxy+}', 'ANY /{proxy+}', 'GET /', 'GET /v1/health']);
  });

  it('serves a throttled, access-logged default stage', () => {
    engine.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
  });

  it('points notification links at the API URL, where the console is served', () => {
    const baseUrl = lambdaProps(fnIds['notifier']).Environment.Variables[ENV_KEYS.baseUrl];
    expect(baseUrl).toEqual(stack.resolve(stack.apiUrl));
    expect(JSON.stringify(baseUrl)).toContain(logicalId(stack, stack.httpApi));
  });
});

describe('EngineStack: alerts', () => {
  const topicId = logicalId(stack, stack.alertTopic);

  it('leaves the alert topic without a customer key (1-3 USD a month) unless the deploy config asks for one', () => {
    engine.resourceCountIs('AWS::KMS::Key', 0);
    engine.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.absent() });
  });

  it('encrypts the alert topic with a rotating customer key that CloudWatch may use, when asked', () => {
    const keyed = synthKuroko({ alertEmail: TEST_EMAIL, alerts: { kmsKey: true } }).templates.engine;
    keyed.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    keyed.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
  });

  it('denies publishing over plain HTTP', () => {
    engine.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes the configured email address', () => {
    engine.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: TEST_EMAIL,
      TopicArn: { Ref: topicId },
    });
  });

  it('subscribes nobody when no address is configured', () => {
    synthKuroko({}).templates.engine.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('alarms on the errors of every function but the migrator (a deploy fails and rolls back when it throws), to the topic', () => {
    for (const [name, id] of Object.entries(fnIds).filter(([n]) => n !== 'migrator')) {
      engine.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: id } }],
        AlarmActions: [{ Ref: topicId }],
      });
      expect(name).not.toBe('migrator');
    }
    const onMigrator = Object.values(engine.findResources('AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a).includes(`"Ref":"${fnIds['migrator']}"`));
    expect(onMigrator).toEqual([]);
  });

  it('alarms when the outbox backlog does not drain', () => {
    engine.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: OUTBOX_METRIC.namespace,
      MetricName: OUTBOX_METRIC.name,
      Dimensions: [{ Name: 'Stage', Value: 'dev' }],
      Statistic: 'Minimum',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 3,
      AlarmActions: [{ Ref: topicId }],
    });
  });

  it('lets the notifier publish to the topic only; its metric goes out as EMF log lines, with no PutMetricData grant', () => {
    const notifierRole = logicalId(stack, stack.functions.notifier.executionRole);
    const statements = iamStatements(engine).filter((s) => s.roles.includes(notifierRole));
    expect(statements.find((s) => s.actions.includes('sns:Publish'))?.resources).toEqual([{ Ref: topicId }]);
    expect(statements.flatMap((s) => s.actions).filter((a) => a.startsWith('cloudwatch:'))).toEqual([]);
    expect(lambdaProps(fnIds['notifier']).Environment.Variables[ENV_KEYS.metricsNamespace]).toBe(OUTBOX_METRIC.namespace);
  });

  it('signs webhooks with a generated key the notifier alone reads, and publishes where to find it', () => {
    const name = '/kuroko/dev/webhook-signing-key';
    const env = lambdaProps(fnIds['notifier']).Environment.Variables;
    expect(env[ENV_KEYS.webhookSecretParameter]).toBe(name);
    expect(env[ENV_KEYS.slackWebhookUrlSecretArn]).toBeUndefined();
    // The migrator creates it (PutParameter only: it never reads the key back), the notifier reads it; nobody else.
    const grants = iamStatements(engine).filter((s) => JSON.stringify(s.resources).includes(`:parameter${name}`));
    expect(grants.map((s) => [s.actions, s.roles])).toEqual(
      expect.arrayContaining([
        [['ssm:GetParameter'], [logicalId(stack, stack.functions.notifier.executionRole)]],
        [['ssm:PutParameter'], [logicalId(stack, stack.functions.migrator.executionRole)]],
      ]),
    );
    expect(grants).toHaveLength(2);
    expect(engine.findOutputs('WebhookSigningKeyParameter')).toMatchObject({ WebhookSigningKeyParameter: { Value: name } });
  });

  it('gives the notifier the Slack webhook URL secret the deploy config names, by name or complete ARN', () => {
    const byName = synthKuroko({ notifications: { slackWebhookUrlSecret: 'kuroko/dev/slack-webhook' } });
    const notifierId = logicalId(byName.engine, byName.engine.functions.notifier);
    const env = (byName.templates.engine.findResources('AWS::Lambda::Function')[notifierId] as { Properties: LambdaResource['Properties'] }).Properties.Environment.Variables;
    expect(JSON.stringify(env[ENV_KEYS.slackWebhookUrlSecretArn])).toContain('secret:kuroko/dev/slack-webhook');
    const role = logicalId(byName.engine, byName.engine.functions.notifier.executionRole);
    const slackReads = iamStatements(byName.templates.engine).filter((s) => s.roles.includes(role) && JSON.stringify(s.resources).includes('slack-webhook'));
    expect(slackReads).toHaveLength(1);
    expect(JSON.stringify(slackReads[0]!.resources)).toContain('secret:kuroko/dev/slack-webhook-??????');
  });
});

describe('EngineStack: idle sleep', () => {
  const [parameterId] = Object.keys(engine.findResources('AWS::SSM::Parameter'));

  it('creates the sleep parameter awake; the ticking functions read it, the scheduler and the api also write it', () => {
    engine.hasResourceProperties('AWS::SSM::Parameter', { Name: '/kuroko/dev/sleep', Type: 'String', Tier: 'Standard', Value: INITIAL_SLEEP_VALUE });
    // The retention function reads it to leave its pass to the next wake (issue 17).
    const sleepers = ['api', 'monitor', 'notifier', 'processor', 'retention', 'scheduler'];
    for (const [name, id] of Object.entries(fnIds)) {
      const env = lambdaProps(id).Environment.Variables;
      expect(env[ENV_KEYS.sleepParameter] === undefined ? undefined : name).toBe(sleepers.includes(name) ? name : undefined);
    }
    // No cap unless configured: the scheduler sleeps until just before the next thing due.
    expect(lambdaProps(fnIds['scheduler']).Environment.Variables[ENV_KEYS.sleepMaxMinutes]).toBeUndefined();
    const grants = iamStatements(engine).filter((s) => JSON.stringify(s.resources).includes(`"${parameterId}"`));
    const roleOf = (n: string) => logicalId(stack, stack.functions[n as 'api'].executionRole);
    const actionsOf = (n: string) => new Set(grants.filter((s) => s.roles.includes(roleOf(n))).flatMap((s) => s.actions));
    const read = ['ssm:GetParameter'];
    expect(new Set(grants.flatMap((s) => s.roles))).toEqual(new Set(sleepers.map(roleOf)));
    for (const name of ['monitor', 'notifier', 'processor', 'retention']) expect(actionsOf(name)).toEqual(new Set(read));
    expect(lambdaProps(fnIds['scheduler']).Environment.Variables[ENV_KEYS.retentionHourUtc]).toBe('4');
    for (const name of ['api', 'scheduler']) expect(actionsOf(name)).toEqual(new Set([...read, 'ssm:PutParameter']));
  });

  it('passes the longest sleep through, and creates no parameter when idle sleep is off', () => {
    const longer = synthKuroko({ idleSleep: { maxMinutes: 180 } });
    const schedulerId = logicalId(longer.engine, longer.engine.functions.scheduler);
    const env = (longer.templates.engine.findResources('AWS::Lambda::Function')[schedulerId] as { Properties: LambdaResource['Properties'] }).Properties.Environment.Variables;
    expect(env[ENV_KEYS.sleepMaxMinutes]).toBe('180');
    const off = synthKuroko({ idleSleep: { enabled: false } });
    off.templates.engine.resourceCountIs('AWS::SSM::Parameter', 0);
    const offEnv = off.templates.engine.findResources('AWS::Lambda::Function');
    expect(JSON.stringify(offEnv)).not.toContain(ENV_KEYS.sleepParameter);
    // Without idle sleep the retention pass keeps its own hour: nobody nudges it.
    expect(JSON.stringify(offEnv)).not.toContain(ENV_KEYS.retentionFunction);
    expect(JSON.stringify(off.templates.workers.findResources('AWS::Lambda::Function'))).not.toContain(ENV_KEYS.sleepParameter);
  });
});

describe('EngineStack: execution output and migrations', () => {
  it('keeps command output in a retained log group with retention', () => {
    const id = logicalId(stack, stack.executionLogGroup);
    engine.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: { RetentionInDays: 30 } });
    expect(engine.findResources('AWS::Logs::LogGroup')[id]).toMatchObject({ DeletionPolicy: 'Retain' });
  });

  it('honours a configured retention on every log group', () => {
    const yearly = synthKuroko({ logRetentionDays: 365 }).templates.engine;
    for (const group of Object.values(yearly.findResources('AWS::Logs::LogGroup'))) {
      expect((group as { Properties: { RetentionInDays?: number } }).Properties.RetentionInDays).toBe(365);
    }
  });

  it('runs the migrator through a custom resource whose trigger is the fingerprint of the migrations', () => {
    engine.hasResourceProperties('Custom::KurokoMigrations', {
      ServiceToken: Match.anyValue(),
      Trigger: migrationsFingerprint(),
    });
    engine.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { USER_ON_EVENT_FUNCTION_ARN: { 'Fn::GetAtt': [fnIds['migrator'], 'Arn'] } } },
    });
  });

  it('gives the migrator the bootstrap admin API client parameter, and nobody else', () => {
    const name = '/kuroko/dev/admin-api-client';
    expect(lambdaProps(fnIds['migrator']).Environment.Variables[ENV_KEYS.apiClientsParameter]).toBe(name);
    const grants = iamStatements(engine).filter((s) => JSON.stringify(s.resources).includes(`:parameter${name}`));
    expect(grants.map((s) => [s.actions, s.roles])).toEqual([[['ssm:PutParameter', 'ssm:GetParameter'], [logicalId(stack, stack.functions.migrator.executionRole)]]]);
  });

  it('keeps the generated keys out of Secrets Manager (issue 17: 0.40 USD a secret a month), and reruns the migrator when their names change', () => {
    // Only the three database logins remain: the Data API signs in with a Secrets Manager secret (secretArn).
    expect(Object.keys(engine.findResources('AWS::SecretsManager::Secret'))).toEqual([]);
    engine.hasResourceProperties('Custom::KurokoMigrations', {
      SecureParameters: ['/kuroko/dev/admin-api-client', '/kuroko/dev/webhook-signing-key'],
    });
    // The notifier's new configuration waits for the migrator that creates its key (an upgrade).
    const notifierResource = (engine.toJSON() as { Resources: Record<string, { DependsOn?: string[] }> }).Resources[fnIds['notifier'] ?? '']!;
    expect(notifierResource.DependsOn).toEqual(expect.arrayContaining(['Migrations']));
  });
});

describe('EngineStack: console sign-in', () => {
  const CONSOLE_KEYS = [ENV_KEYS.consoleSecretArn, ENV_KEYS.oidcIssuer, ENV_KEYS.oidcClientId, ENV_KEYS.oidcClientSecretArn, ENV_KEYS.oidcAllowedDomains, ENV_KEYS.consoleAdmins, ENV_KEYS.baseUrl];
  const withConsole = synthKuroko({ alertEmail: TEST_EMAIL, console: TEST_CONSOLE });
  const cStack = withConsole.engine;
  const cTemplate = withConsole.templates.engine;
  const apiId = logicalId(cStack, cStack.functions.api);
  const apiEnv = () =>
    (cTemplate.toJSON() as { Resources: Record<string, LambdaResource> }).Resources[apiId]!.Properties.Environment.Variables;
  const secretReads = (template: typeof engine, roleId: string) =>
    iamStatements(template).filter((s) => s.roles.includes(roleId) && s.actions.includes('secretsmanager:GetSecretValue'));

  it('serves no console and creates no signing key without OIDC settings', () => {
    const env = lambdaProps(fnIds['api']).Environment.Variables;
    for (const key of CONSOLE_KEYS) expect(env[key], key).toBeUndefined();
    expect(stack.consoleSigningKey).toBeUndefined();
    // The bootstrap admin client's secret and the webhook signing key are SSM parameters the migrator creates.
    engine.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(engine.findOutputs('ConsoleRedirectUri')).toEqual({});
  });

  it('lets unverified emails in (as viewers) only when the deploy config opts out, for providers without email_verified', () => {
    // Off by default: the api must see no KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL, so email_verified: true is required.
    expect(apiEnv()[ENV_KEYS.oidcAllowUnverifiedEmail]).toBeUndefined();
    const optedOut = synthKuroko({ alertEmail: TEST_EMAIL, console: { ...TEST_CONSOLE, allowUnverifiedEmail: true } });
    const id = logicalId(optedOut.engine, optedOut.engine.functions.api);
    const env = (optedOut.templates.engine.toJSON() as { Resources: Record<string, LambdaResource> }).Resources[id]!.Properties.Environment.Variables;
    expect(env[ENV_KEYS.oidcAllowUnverifiedEmail]).toBe('true');
  });

  it('gives the api the OIDC settings, the secrets by ARN, and the API URL as its base URL', () => {
    const signingKeyId = logicalId(cStack, cStack.consoleSigningKey!);
    const env = apiEnv();
    expect(env[ENV_KEYS.consoleSecretArn]).toEqual({ Ref: signingKeyId });
    expect(env[ENV_KEYS.oidcIssuer]).toBe(TEST_CONSOLE.oidcIssuer);
    expect(env[ENV_KEYS.oidcClientId]).toBe(TEST_CONSOLE.oidcClientId);
    expect(env[ENV_KEYS.oidcAllowedDomains]).toBe('example.com');
    expect(env[ENV_KEYS.consoleAdmins]).toBe('ops@example.com,lead@example.com');
    expect(JSON.stringify(env[ENV_KEYS.oidcClientSecretArn])).toMatch(/:secretsmanager:.*:secret:kuroko\/dev\/oidc-client"/);
    expect(env[ENV_KEYS.baseUrl]).toEqual(cStack.resolve(cStack.apiUrl));
    // No variable holds a secret value: only ARNs and public settings.
    expect(Object.keys(env).filter((k) => /SECRET$/.test(k))).toEqual([]);
    cTemplate.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { ExcludePunctuation: true, PasswordLength: 64 },
    });
    expect(JSON.stringify(cTemplate.findOutputs('ConsoleRedirectUri'))).toContain('auth/oidc/callback');
  });

  it('lets the api read exactly the runtime database secret, the signing key and the client secret (any suffix of its name)', () => {
    const apiRole = logicalId(cStack, cStack.functions.api.executionRole);
    const resources = secretReads(cTemplate, apiRole).flatMap((s) => s.resources).map((r) => JSON.stringify(r));
    expect(resources).toHaveLength(3);
    expect(resources).toContain(JSON.stringify(cStack.resolve(withConsole.data.runtimeDatabase.secretArn)));
    expect(resources).toContain(JSON.stringify({ Ref: logicalId(cStack, cStack.consoleSigningKey!) }));
    expect(resources.find((r) => r.includes('oidc-client'))).toMatch(/secret:kuroko\/dev\/oidc-client-\?\?\?\?\?\?"/);
    const signingKeyId = logicalId(cStack, cStack.consoleSigningKey!);
    const readers = iamStatements(cTemplate).filter((s) => JSON.stringify(s.resources).includes(`"${signingKeyId}"`));
    expect(readers.flatMap((s) => s.roles)).toEqual([apiRole]);
    expect(readers.flatMap((s) => s.actions)).toEqual(['secretsmanager:GetSecretValue']);
  });

  it('grants a client secret named by complete ARN on that ARN alone', () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kuroko/oidc-AbC123';
    const byArn = synthKuroko({ console: { ...TEST_CONSOLE, oidcClientSecretArn: arn } });
    const template = byArn.templates.engine;
    const apiFn = (template.toJSON() as { Resources: Record<string, LambdaResource> }).Resources[logicalId(byArn.engine, byArn.engine.functions.api)]!;
    expect(apiFn.Properties.Environment.Variables[ENV_KEYS.oidcClientSecretArn]).toBe(arn);
    const resources = secretReads(template, logicalId(byArn.engine, byArn.engine.functions.api.executionRole)).flatMap((s) => s.resources);
    expect(resources).toContain(arn);
    expect(resources.filter((r) => JSON.stringify(r).includes('kuroko/oidc'))).toEqual([arn]);
  });
});
