/**
 * The stateless engine: the Lambda functions, their schedules, the HTTP API, alerts and alarms, and the
 * deploy-time migrator. It can be destroyed and redeployed freely; all state lives in the DataStack.
 *
 * The functions are deliberately NOT in the VPC: they reach Aurora only through the RDS Data API, an
 * HTTPS endpoint outside the VPC, so they need neither a NAT gateway (about 32 USD a month each, plus per-GB
 * charges) nor VPC endpoints, and they avoid ENI cold-start and IP-exhaustion issues.
 */
import {
  ArnFormat,
  type CfnElement,
  CfnOutput,
  CustomResource,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_apigatewayv2 as apigw,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_logs as logs,
  aws_secretsmanager as secretsmanager,
  type aws_sns as sns,
  aws_sns_subscriptions as subscriptions,
  aws_ssm as ssm,
  custom_resources as cr,
} from 'aws-cdk-lib';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Construct } from 'constructs';
import { INITIAL_SLEEP_VALUE } from '../../adapters/aws/sleep-value';
import { CUSTOM_TASKS_ENV, ENV_KEYS, LAMBDA_NAMES, OIDC_CALLBACK_PATH, OUTBOX_METRIC, type LambdaName } from '../../app/config/env-keys';
import type { DatabaseBinding } from '../constructs/database-binding';
import { createAlertTopic } from '../constructs/alert-topic';
import { EngineFunction } from '../constructs/engine-function';
import { FunctionAlarms } from '../constructs/function-alarms';
import { COMPLETE_SECRET_ARN, consoleOidcOf, type DeployConfig } from '../deploy-config';
import { acknowledge } from '../nag';
import { DoorbellQueue } from '../constructs/doorbell-queue';

/** The functions that run on a one-minute EventBridge schedule (the provisioner's lives in the WorkersStack). */
export const TICKING_FUNCTIONS = [
  LAMBDA_NAMES.processor,
  LAMBDA_NAMES.scheduler,
  LAMBDA_NAMES.monitor,
  LAMBDA_NAMES.notifier,
] as const satisfies readonly LambdaName[];

/** The routes of the HTTP API, all served by the api function. */
export const API_ROUTES = [
  { method: apigw.HttpMethod.GET, path: '/v1/health' },
  { method: apigw.HttpMethod.ANY, path: '/v1/{proxy+}' },
  { method: apigw.HttpMethod.GET, path: '/' },
  { method: apigw.HttpMethod.ANY, path: '/{proxy+}' },
] as const;

const API_RATE_LIMIT_PER_SECOND = 50;
const API_BURST_LIMIT = 100;
const MIGRATOR_TIMEOUT = Duration.minutes(5);
/** The retention pass stops taking batches a minute before this (functions/retention/handler.ts); Lambda's longest. */
const RETENTION_TIMEOUT = Duration.minutes(15);
const PROCESSOR_TIMEOUT = Duration.seconds(60);
const API_TIMEOUT = Duration.seconds(29);
/** The backlog counts as stuck when it never drains to zero in this many consecutive 5-minute periods. */
const OUTBOX_STUCK_PERIODS = 3;
const ALARM_PERIOD = Duration.minutes(5);
/** Well above the console's 32-character minimum for its HMAC-SHA256 key. */
const CONSOLE_SIGNING_KEY_LENGTH = 64;
/** Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN. */
const SECRET_SUFFIX_PATTERN = '-??????';
export { CLOUDWATCH_SERVICE } from '../constructs/alert-topic';

export interface KurokoEngineProps {
  readonly config: DeployConfig;
  /** The master user: the migrator's alone. */
  readonly database: DatabaseBinding;
  /** The runtime user (no DDL) every other function uses, and the agent user; the migrator creates both. */
  readonly runtimeDatabase: DatabaseBinding;
  readonly agentDatabase: DatabaseBinding;
  readonly logRetention: logs.RetentionDays;
  /**
   * The migration custom resource runs whenever this changes: the app passes a fingerprint of the migration files
   * (cdk/migration-trigger.ts), so a deploy that changes no migration does not touch the database.
   */
  readonly migrationTrigger: string;
}

export interface EngineStackProps extends StackProps, KurokoEngineProps {}

/** What the EngineStack holds, as a construct (cdk/kuroko.ts puts it into a stack of another app). */
export class KurokoEngine extends Construct {
  readonly functions: Readonly<Record<Exclude<LambdaName, 'provisioner'>, EngineFunction>>;
  readonly alertTopic: sns.Topic;
  readonly executionLogGroup: logs.LogGroup;
  readonly httpApi: apigw.HttpApi;
  readonly apiUrl: string;
  /** The console's cookie-signing key; only when the deploy config enables OIDC sign-in. */
  readonly consoleSigningKey: secretsmanager.Secret | undefined;
  /** The idle-sleep hint; only when the deploy config leaves idle sleep on. */
  readonly sleepParameter: ssm.StringParameter | undefined;
  /** The SQS doorbell the processor rings for the agents on EC2. */
  readonly doorbell: DoorbellQueue;

  /** The migration custom resource: nothing that ticks may start before it. */
  readonly migrations: CustomResource;

  constructor(scope: Construct, id: string, props: KurokoEngineProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { config, database } = props;
    const stage = config.stageName;

    this.alertTopic = createAlertTopic(this, config);
    if (config.alertEmail !== undefined) {
      this.alertTopic.addSubscription(new subscriptions.EmailSubscription(config.alertEmail));
    }

    this.executionLogGroup = new logs.LogGroup(this, 'ExecutionLogs', {
      retention: props.logRetention,
      // Command output is the record of what ran; deleting the stack must not delete it.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const make = (name: Exclude<LambdaName, 'provisioner'>, description: string, extra: Partial<{ timeout: Duration }> = {}) =>
      new EngineFunction(this, fnId(name), {
        name,
        stage,
        description,
        logRetention: props.logRetention,
        ...extra,
      }).bindDatabase(name === LAMBDA_NAMES.migrator ? database : props.runtimeDatabase);

    const notifier = make(LAMBDA_NAMES.notifier, 'Delivers outbox events to SNS, Slack and webhooks');
    notifier.addEnvironment(ENV_KEYS.alertTopicArn, this.alertTopic.topicArn);
    notifier.addEnvironment(ENV_KEYS.metricsNamespace, OUTBOX_METRIC.namespace);
    this.alertTopic.grantPublish(notifier);
    this.bindNotificationSecrets(notifier, config);
    // The outbox metric reaches CloudWatch as EMF lines in the notifier's log (app/lambda/lambda-metrics.ts):
    // no PutMetricData call, so no grant for it.

    const processor = make(LAMBDA_NAMES.processor, 'Advances tokens one node per step', {
      timeout: PROCESSOR_TIMEOUT,
    }).bindNudge(notifier, ENV_KEYS.notifierFunction);
    this.doorbell = new DoorbellQueue(this, 'Doorbell', { stage });
    this.doorbell.bindRinger(processor);
    const scheduler = make(LAMBDA_NAMES.scheduler, 'Launches cron slots at most once').bindNudge(
      processor,
      ENV_KEYS.processorFunction,
    );
    const monitor = make(LAMBDA_NAMES.monitor, 'Detects stuck, lost and overdue executions')
      .bindNudge(processor, ENV_KEYS.processorFunction)
      .bindNudge(notifier, ENV_KEYS.notifierFunction);
    const api = make(LAMBDA_NAMES.api, 'HTTP API v1 and the console', { timeout: API_TIMEOUT })
      .bindNudge(processor, ENV_KEYS.processorFunction)
      .bindNudge(notifier, ENV_KEYS.notifierFunction);
    api.addEnvironment(ENV_KEYS.declaredQueues, JSON.stringify(config.workerQueues.map((q) => q.name)));
    // Custom task types: the processor runs them, the API validates scripts and retries and skips tokens with them.
    if (Object.keys(config.customTasks).length > 0) {
      for (const fn of [processor, api]) fn.addEnvironment(CUSTOM_TASKS_ENV.json, JSON.stringify(config.customTasks));
    }
    api.addEnvironment(ENV_KEYS.executionLogGroup, this.executionLogGroup.logGroupName);
    api.addToRolePolicy(
      new iam.PolicyStatement({
        // The output endpoint pages through a stream with GetLogEvents (adapters/aws/cloudwatch-log-sink.ts), nothing else.
        actions: ['logs:GetLogEvents'],
        resources: [this.executionLogGroup.logGroupArn],
      }),
    );

    const migrator = make(LAMBDA_NAMES.migrator, 'Applies database migrations at deploy time', {
      timeout: MIGRATOR_TIMEOUT,
    });
    // The first admin API client and the webhook key are SecureString parameters, not Secrets Manager secrets (0.40
    // USD a month each): CloudFormation cannot create one, so the migrator generates both on the first deploy.
    const adminClientParameter = adminApiClientParameterName(stage);
    const webhookKeyParameter = webhookSigningKeyParameterName(stage);
    migrator.bindSecureParameter(ENV_KEYS.apiClientsParameter, adminClientParameter, ['create', 'read']);
    migrator.bindSecureParameter(ENV_KEYS.webhookSecretParameter, webhookKeyParameter, ['create']);
    // The migrator reads the users' generated passwords to create them; nothing else reads these two and the master.
    migrator.bindSecret(ENV_KEYS.dbRuntimeSecretArn, props.runtimeDatabase.secretArn);
    migrator.bindSecret(ENV_KEYS.dbAgentSecretArn, props.agentDatabase.secretArn);

    // The daily retention pass (core/services/retention-service.ts) deletes database rows only: command output in
    // the execution log group is left to that group's retention (logRetentionDays), so it needs no logs grant.
    const retention = make(LAMBDA_NAMES.retention, 'Deletes finished and canceled instances past their retention', {
      timeout: RETENTION_TIMEOUT,
    });
    retention.addEnvironment(ENV_KEYS.retentionDays, String(config.retention.days));

    this.functions = { processor, scheduler, monitor, notifier, api, migrator, retention };

    this.sleepParameter = config.idleSleep.enabled
      ? new ssm.StringParameter(this, 'SleepParameter', {
          parameterName: sleepParameterName(stage),
          description: `Kuroko ${stage}: until when the idle engine's ticks leave the database alone (written by the functions)`,
          stringValue: INITIAL_SLEEP_VALUE,
          tier: ssm.ParameterTier.STANDARD,
        })
      : undefined;
    if (this.sleepParameter) {
      for (const fn of [processor, monitor, notifier, retention]) fn.bindSleep(this.sleepParameter, 'read');
      for (const fn of [scheduler, api]) fn.bindSleep(this.sleepParameter, 'readWrite');
      // Issue 17: the daily retention pass rides on a wake instead of waking Aurora at its hour: asleep at its hour, it
      // leaves the pass to the next wake, and the scheduler nudges it when it next puts the engine to sleep.
      scheduler.bindNudge(retention, ENV_KEYS.retentionFunction);
      scheduler.addEnvironment(ENV_KEYS.retentionHourUtc, String(config.retention.hourUtc));
      const maxMinutes = config.idleSleep.maxMinutes;
      if (maxMinutes !== undefined) scheduler.addEnvironment(ENV_KEYS.sleepMaxMinutes, String(maxMinutes));
    }

    const ticks = TICKING_FUNCTIONS.map((name) => {
      const fn = this.functions[name];
      return new events.Rule(this, `${fnId(name)}Tick`, {
        description: `Runs the ${name} every minute`,
        schedule: events.Schedule.rate(Duration.minutes(1)),
        targets: [new targets.LambdaFunction(fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
      });
    });

    // Its own daily schedule: one pass a day, not a tick. With idle sleep, an engine asleep until a wake within a day
    // leaves the pass to that wake (app/lambda/retention-function.ts); asleep longer, it runs at its hour anyway.
    ticks.push(
      new events.Rule(this, 'RetentionSchedule', {
        description: `Runs the retention pass daily at ${config.retention.hourUtc}:00 UTC`,
        schedule: events.Schedule.cron({ minute: '0', hour: String(config.retention.hourUtc) }),
        targets: [new targets.LambdaFunction(retention, { retryAttempts: 0, maxEventAge: Duration.hours(1) })],
      }),
    );

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      apiName: `kuroko-${stage}`,
      description: 'Kuroko API v1 and console',
      createDefaultStage: false,
    });
    const defaultStage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: API_RATE_LIMIT_PER_SECOND, burstLimit: API_BURST_LIMIT },
      accessLogSettings: { destination: new apigw.LogGroupLogDestination(accessLogs) },
    });
    const integration = new HttpLambdaIntegration('ApiIntegration', api);
    for (const route of API_ROUTES) {
      this.httpApi.addRoutes({ path: route.path, methods: [route.method], integration });
    }
    this.apiUrl = defaultStage.url;
    // Links in notifications open the console, which the api function serves on the same URL.
    notifier.addEnvironment(ENV_KEYS.baseUrl, this.apiUrl);
    this.consoleSigningKey = this.bindConsole(api, config);
    for (const route of this.httpApi.node.findAll().filter((c) => c instanceof apigw.HttpRoute)) {
      acknowledge(route, 'AwsSolutions-APIG4', 'The api function authenticates every request itself with HTTP Basic against hashed API clients (Kuroko2-compatible, spec: Authentication); /v1/health and the console login page must stay open.');
    }

    // No alarm for the migrator: it runs only inside a deploy, whose stack fails and rolls back when it throws.
    for (const fn of Object.values(this.functions).filter((f) => f !== migrator)) {
      new FunctionAlarms(this, `${fnId(fn.kurokoName)}Alarms`, { fn, topic: this.alertTopic });
    }
    const backlog = new cloudwatch.Metric({
      namespace: OUTBOX_METRIC.namespace,
      metricName: OUTBOX_METRIC.name,
      dimensionsMap: { Stage: stage },
      statistic: cloudwatch.Stats.MINIMUM,
      period: ALARM_PERIOD,
    });
    const backlogAlarm = new cloudwatch.Alarm(this, 'OutboxBacklogAlarm', {
      alarmDescription: `Kuroko ${stage}: undelivered events have not drained for ${OUTBOX_STUCK_PERIODS * 5} minutes`,
      metric: backlog,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: OUTBOX_STUCK_PERIODS,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    });
    backlogAlarm.addAlarmAction(new cwActions.SnsAction(this.alertTopic));

    const providerLogs = new logs.LogGroup(this, 'MigrationProviderLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const provider = new cr.Provider(this, 'MigrationProvider', {
      onEventHandler: migrator,
      logGroup: providerLogs,
    });
    const migrations = (this.migrations = new CustomResource(this, 'Migrations', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::KurokoMigrations',
      // The parameters it creates are properties too: a deploy that adds or renames one runs the migrator, so an
      // upgrade from the Secrets Manager secrets creates them even when no migration changed.
      properties: { Trigger: props.migrationTrigger, SecureParameters: [adminClientParameter, webhookKeyParameter] },
    }));
    // The notifier reads the webhook key the migrator creates: on an upgrade its new configuration waits for it.
    notifier.node.addDependency(migrations);
    // On a first deploy the ticks must not start before the schema exists (the Workers stack, with the
    // provisioner's tick, already deploys after this whole stack).
    for (const tick of ticks) tick.node.addDependency(migrations);

    new CfnOutput(this, 'ApiUrl', { value: this.apiUrl });
    new CfnOutput(this, 'AlertTopicArn', { value: this.alertTopic.topicArn });
    new CfnOutput(this, 'ExecutionLogGroupName', { value: this.executionLogGroup.logGroupName });
    new CfnOutput(this, 'AdminApiClientParameter', { value: adminClientParameter });
    // Webhook receivers verify X-Kuroko2-Signature with this key.
    new CfnOutput(this, 'WebhookSigningKeyParameter', { value: webhookKeyParameter });

    if (config.alerts.kmsKey) acknowledge(notifier.executionRole, 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'Publishing to the KMS-encrypted alert topic needs kms:GenerateDataKey* (GenerateDataKey and its WithoutPlaintext form) on that one key only; grantPublish scopes it to the key ARN.');
    acknowledge(provider, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'The Provider framework function is created by aws-cdk-lib with AWSLambdaBasicExecutionRole; it only writes its own logs and has no data access.');
    const migratorLogicalId = stack.getLogicalId(migrator.node.defaultChild as CfnElement);
    acknowledge(provider, `AwsSolutions-IAM5[Resource::<${migratorLogicalId}.Arn>:*]`, 'The Provider framework may invoke the migrator and its versions (the migrator ARN with :*), nothing wider.');
  }

  /**
   * The notifier's keys, read at its first invocation and by it alone: the generated key that signs every definition
   * webhook (X-Kuroko2-Signature; a SecureString parameter the migrator creates; receivers hold a copy, so it is
   * rotated by hand with them, cdk/README.md), and the Slack incoming-webhook URL when the deploy config names the
   * operator's secret holding it.
   */
  private bindNotificationSecrets(notifier: EngineFunction, config: DeployConfig): void {
    notifier.bindSecureParameter(ENV_KEYS.webhookSecretParameter, webhookSigningKeyParameterName(config.stageName), ['read']);
    const slackSecret = config.notifications.slackWebhookUrlSecret;
    if (slackSecret !== undefined) {
      const slack = this.operatorSecret(slackSecret);
      notifier.bindSecret(ENV_KEYS.slackWebhookUrlSecretArn, slack.secretId, slack.policyArn);
    }
  }

  /**
   * Serves the console from the api function when the deploy config names an OIDC provider: a generated
   * cookie-signing key and the operator's client secret, both read by ARN at cold start and by the api alone.
   */
  private bindConsole(api: EngineFunction, config: DeployConfig): secretsmanager.Secret | undefined {
    const oidc = consoleOidcOf(config.console);
    if (oidc === undefined) return undefined;
    const signingKey = new secretsmanager.Secret(this, 'ConsoleSigningKey', {
      description: `Kuroko ${config.stageName}: signs the console's session cookies`,
      generateSecretString: { excludePunctuation: true, passwordLength: CONSOLE_SIGNING_KEY_LENGTH },
    });
    const clientSecret = this.operatorSecret(oidc.oidcClientSecretArn);
    api.bindSecret(ENV_KEYS.consoleSecretArn, signingKey.secretArn);
    api.bindSecret(ENV_KEYS.oidcClientSecretArn, clientSecret.secretId, clientSecret.policyArn);
    api.addEnvironment(ENV_KEYS.oidcIssuer, oidc.oidcIssuer);
    api.addEnvironment(ENV_KEYS.oidcClientId, oidc.oidcClientId);
    api.addEnvironment(ENV_KEYS.oidcAllowedDomains, oidc.allowedDomains.join(','));
    if (oidc.admins.length > 0) api.addEnvironment(ENV_KEYS.consoleAdmins, oidc.admins.join(','));
    if (oidc.allowUnverifiedEmail) api.addEnvironment(ENV_KEYS.oidcAllowUnverifiedEmail, 'true');
    // The function refers to the API it sits behind (as the notifier does); the API does not refer back to the
    // function's environment, so there is no cycle.
    api.addEnvironment(ENV_KEYS.baseUrl, this.apiUrl);
    // apiUrl ends with a slash.
    new CfnOutput(this, 'ConsoleRedirectUri', { value: `${this.apiUrl}${OIDC_CALLBACK_PATH.slice(1)}` });
    acknowledge(signingKey, 'AwsSolutions-SMG4', 'The key only signs console session cookies and is read once per container; rotating it signs everyone out, so an operator rotates it by hand (rotate-secret, then redeploy) when a leak is suspected.');
    return signingKey;
  }

  /**
   * An operator-created secret named by complete ARN or by name: the ARN the function passes to GetSecretValue
   * (a name becomes an ARN without its random suffix, which Secrets Manager resolves) and the one IAM matches.
   */
  private operatorSecret(arnOrName: string): { secretId: string; policyArn: string } {
    if (COMPLETE_SECRET_ARN.test(arnOrName)) return { secretId: arnOrName, policyArn: arnOrName };
    const byName = (resourceName: string) =>
      Stack.of(this).formatArn({ service: 'secretsmanager', resource: 'secret', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    return { secretId: byName(arnOrName), policyArn: byName(`${arnOrName}${SECRET_SUFFIX_PATTERN}`) };
  }
}

/** The engine's stack; its contents sit under the id `Default`, which keeps their logical ids (see DataStack). */
export class EngineStack extends Stack {
  readonly contents: KurokoEngine;
  readonly functions: KurokoEngine['functions'];
  readonly alertTopic: sns.Topic;
  readonly executionLogGroup: logs.LogGroup;
  readonly httpApi: apigw.HttpApi;
  readonly apiUrl: string;
  readonly consoleSigningKey: secretsmanager.Secret | undefined;
  readonly sleepParameter: ssm.StringParameter | undefined;
  readonly doorbell: DoorbellQueue;

  constructor(scope: Construct, id: string, props: EngineStackProps) {
    super(scope, id, props);
    const c = (this.contents = new KurokoEngine(this, 'Default', props));
    ({ functions: this.functions, alertTopic: this.alertTopic, executionLogGroup: this.executionLogGroup, httpApi: this.httpApi } = c);
    ({ apiUrl: this.apiUrl, consoleSigningKey: this.consoleSigningKey, sleepParameter: this.sleepParameter, doorbell: this.doorbell } = c);
  }
}

/**
 * The idle-sleep parameter's name. Other stacks name it by this convention instead of importing it: an export
 * that a config change removes (idle sleep off) while another stack still imports it fails the deploy.
 */
export const sleepParameterName = (stage: string): string => `/kuroko/${stage}/sleep`;
/** The SecureString parameters the migrator generates (functions/migrator/migrator-function.ts). */
export const adminApiClientParameterName = (stage: string): string => `/kuroko/${stage}/admin-api-client`;
export const webhookSigningKeyParameterName = (stage: string): string => `/kuroko/${stage}/webhook-signing-key`;

/** Construct id of a function: `processor` becomes `Processor`. */
export const fnId = (name: LambdaName): string => name.charAt(0).toUpperCase() + name.slice(1);
