/**
 * The configuration of each Lambda function, read once at start (the worker agent's SSM parameter and the
 * building blocks both share are in config-schemas.ts).
 * Each `parse*Config` reads the environment it is given, reports every problem at once in a ConfigError, and
 * returns a typed object; code below the handler receives that object, never `process.env`.
 */
import { z } from 'zod';
import {
  arnOf,
  databaseNameSchema,
  intAtLeast,
  jsonOf,
  nonEmpty,
  parseWith,
  queueNameSchema,
  type DatabaseConfig,
  type Environment,
} from './config-schemas';
import { isEmailAddress, normalizeDomain, normalizeEmail } from '../../core/sign-in-rules';
import { trimBaseUrl } from '../../core/urls';
import { ENV_KEYS, LOG_LEVELS, SLEEP_MAX_MINUTES } from './env-keys';
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from '../../core/services/retention-service';
import type { MonitorSettings } from '../../core/services/monitor-service';
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import type { NotificationSettings } from '../../adapters/channels/notification-channels';
import { CUSTOM_TASKS_FIELD, customTasksShape, withCustomTasksField } from './custom-tasks-config';
import { monitorShape, toMonitorSettings } from './monitor-settings';
import { notificationShape, toNotificationSettings } from './notification-settings';

/** What every function shares. */
export interface BaseConfig {
  readonly stage: string;
  readonly database: DatabaseConfig;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** The SSM parameter of the idle sleep (adapters/aws/sleep-gate.ts); undefined: the engine never sleeps. */
  readonly sleepParameter: string | undefined;
  /** Overrides the function's own wait for a resuming database (app/lambda/lambda-resume.ts). */
  readonly dbResumeWaitMs?: number;
  /** The deployment's custom task types (KUROKO_CUSTOM_TASKS or KUROKO_CUSTOM_TASKS_FILE). */
  readonly customTasks: CustomTasks;
}

/** One worker queue as the provisioner sees it (written by the WorkersStack as JSON). */
export interface WorkerQueueBinding {
  readonly name: string;
  readonly launchTemplateId: string;
  readonly subnetIds: readonly string[];
  readonly slotsPerWorker: number;
  readonly minInstances: number;
  readonly maxInstances: number;
  readonly idleMinutes: number;
  /** RunInstances uses this launch template version ('$Latest' when unset). */
  readonly launchTemplateVersion?: string;
  /** An instance whose agent has not registered this long after launch is replaced (10 when unset). */
  readonly bootTimeoutMinutes?: number;
  /**
   * Set when the launch template requests a public IP in its network interface: RunInstances must then name the
   * subnet inside that interface, with these security groups, instead of as an instance-level SubnetId.
   */
  readonly networkInterface?: { readonly associatePublicIpAddress: boolean; readonly securityGroupIds: readonly string[] };
}

export interface ProcessorConfig extends BaseConfig {
  /** Nudged after a step that wrote events, so notifications do not wait for the next minute. */
  readonly notifierFunctionName: string | undefined;
  /** Rung when a pass queued commands, so agents on EC2 need not poll the Data API every second (issue 18). */
  readonly doorbellQueueUrl: string | undefined;
}
export interface SchedulerConfig extends BaseConfig {
  /** Nudged after a cron launch, so the first step does not wait for the next minute. */
  readonly processorFunctionName: string | undefined;
  /** The longest idle sleep the scheduler publishes; undefined: no cap (until the next thing due). */
  readonly sleepMaxMinutes: number | undefined;
  /** Nudged when the engine goes to sleep with a retention pass owed (app/lambda/scheduler-function.ts). */
  readonly retention: { readonly functionName: string; readonly hourUtc: number } | undefined;
}
export interface MonitorConfig extends BaseConfig {
  readonly notifierFunctionName: string | undefined;
  /** Nudged after executions were finished as lost, so their tokens fail without waiting for the next minute. */
  readonly processorFunctionName: string | undefined;
  /** The thresholds (KUROKO_ASSIGNMENT_DELAY_SECONDS and the others of monitor-settings.ts). */
  readonly monitor: MonitorSettings;
}
export interface RetentionConfig extends BaseConfig {
  /** KUROKO_RETENTION_DAYS: days finished and canceled instances are kept (0: forever; default 90). */
  readonly retentionDays: number;
}
export interface NotifierConfig extends BaseConfig {
  readonly alertTopicArn: string;
  readonly metricsNamespace: string;
  /** A secret holding the Slack incoming-webhook URL; without it (or KUROKO_SLACK_WEBHOOK_URL) there is no Slack. */
  readonly slackWebhookUrlSecretArn: string | undefined;
  /** A SecureString parameter holding the key that signs definition webhooks (X-Kuroko2-Signature). */
  readonly webhookSecretParameter: string | undefined;
  /** The channels' settings from the variables; the secret and the parameter above, when set, replace theirs. */
  readonly notification: NotificationSettings;
}
export interface ProvisionerConfig extends BaseConfig {
  readonly workerQueues: readonly WorkerQueueBinding[];
}
export interface ApiConfig extends BaseConfig {
  /** Queues the deployment declares: known even while no worker runs (spec D14). */
  readonly declaredQueues: readonly string[];
  readonly processorFunctionName: string | undefined;
  readonly notifierFunctionName: string | undefined;
  readonly executionLogGroupName: string | undefined;
  /** The web console, served next to `/v1` only when an OpenID Connect provider is configured. */
  readonly console: ApiConsoleBinding | undefined;
}
/**
 * Where the api finds the console's settings, checked and normalised as the console wants them (only the two
 * secrets, read from Secrets Manager on the first request, are checked later: http/console-binding.ts).
 */
export interface ApiConsoleBinding {
  readonly signingSecretArn: string;
  readonly oidcIssuer: string;
  readonly oidcClientId: string;
  readonly oidcClientSecretArn: string;
  /** Lower-cased, without a leading `@`; `*` allows any. */
  readonly allowedDomains: readonly string[];
  /** Lower-cased email addresses. */
  readonly admins: readonly string[];
  /** KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL: let in, as viewers, people whose provider sends no email_verified claim. */
  readonly allowUnverifiedEmail?: true;
  /** The HTTP API's public URL, without a trailing slash: redirect URIs and secure cookies are built from it. */
  readonly baseUrl: string;
}
export interface MigratorConfig extends BaseConfig {
  /** A SecureString parameter `{"name","secret"}` for the first admin API client: created if absent, then read. */
  readonly apiClientsParameter: string | undefined;
  /** The webhook key's SecureString parameter, created if absent (the migrator never reads it; the notifier does). */
  readonly webhookSecretParameter: string | undefined;
  /** Secrets of the MySQL users the migrator creates and grants (agent: the claim loop's tables; runtime: rows, no DDL). */
  readonly databaseUserSecretArns: { readonly agent: string | undefined; readonly runtime: string | undefined };
}

const optionalName = z.string().trim().min(1).optional();
/** An SSM parameter's full name (a path from the root: the grants name it so), not its ARN. */
const parameterName = z.string().regex(/^\/[\w.\-/]+$/, 'must be an SSM parameter name such as /kuroko/prod/name');

const workerQueueBindingSchema = z
  .object({
    name: queueNameSchema,
    launchTemplateId: nonEmpty,
    subnetIds: z.array(nonEmpty).min(1),
    slotsPerWorker: intAtLeast(1),
    minInstances: intAtLeast(0),
    maxInstances: intAtLeast(1),
    idleMinutes: intAtLeast(1),
    launchTemplateVersion: z.optional(nonEmpty),
    bootTimeoutMinutes: z.optional(intAtLeast(1)),
    networkInterface: z.optional(z.object({ associatePublicIpAddress: z.boolean(), securityGroupIds: z.array(nonEmpty).min(1) })),
  })
  .refine((q) => q.minInstances <= q.maxInstances, 'minInstances must not exceed maxInstances');

const baseShape = {
  [ENV_KEYS.stage]: nonEmpty,
  [ENV_KEYS.dbClusterArn]: arnOf('rds'),
  [ENV_KEYS.dbSecretArn]: arnOf('secretsmanager'),
  [ENV_KEYS.dbName]: databaseNameSchema,
  [ENV_KEYS.powertoolsLogLevel]: z.enum(LOG_LEVELS).default('INFO'),
  [ENV_KEYS.dataApiEndpoint]: z.url().optional(),
  [ENV_KEYS.sleepParameter]: optionalName,
  [ENV_KEYS.dbResumeWaitSeconds]: z.coerce.number().min(0, 'must be at least 0').max(900, 'must be at most 900').optional(),
  ...customTasksShape,
};
type BaseEnv = z.infer<z.ZodObject<typeof baseShape>>;

const resumeWait = (seconds: number | undefined) => (seconds !== undefined ? { dbResumeWaitMs: seconds * 1000 } : {});

const toBase = (env: BaseEnv, _ctx: z.RefinementCtx): BaseConfig => ({
  stage: env[ENV_KEYS.stage],
  customTasks: env[CUSTOM_TASKS_FIELD],
  logLevel: env[ENV_KEYS.powertoolsLogLevel],
  sleepParameter: env[ENV_KEYS.sleepParameter],
  ...resumeWait(env[ENV_KEYS.dbResumeWaitSeconds]),
  database: {
    clusterArn: env[ENV_KEYS.dbClusterArn],
    secretArn: env[ENV_KEYS.dbSecretArn],
    databaseName: env[ENV_KEYS.dbName],
    ...(env[ENV_KEYS.dataApiEndpoint] !== undefined ? { endpoint: env[ENV_KEYS.dataApiEndpoint] } : {}),
  },
});

const processorSchema = z
  .object({ ...baseShape, [ENV_KEYS.notifierFunction]: optionalName, [ENV_KEYS.doorbellQueueUrl]: optionalName })
  .transform(
    (env, ctx): ProcessorConfig => ({
      ...toBase(env, ctx),
      notifierFunctionName: env[ENV_KEYS.notifierFunction],
      doorbellQueueUrl: env[ENV_KEYS.doorbellQueueUrl],
    }),
  );

const retentionNudgeOf = (functionName: string | undefined, hourUtc: number) =>
  functionName === undefined ? undefined : { functionName, hourUtc };

const schedulerSchema = z
  .object({
    ...baseShape,
    [ENV_KEYS.processorFunction]: optionalName,
    [ENV_KEYS.sleepMaxMinutes]: z.coerce
      .number()
      .int('must be a whole number')
      .min(SLEEP_MAX_MINUTES.min)
      .max(SLEEP_MAX_MINUTES.max)
      .optional(),
    [ENV_KEYS.retentionFunction]: optionalName,
    [ENV_KEYS.retentionHourUtc]: z.coerce.number().int('must be a whole number').min(0).max(23).default(4),
  })
  .transform(
    (env, ctx): SchedulerConfig => ({
      ...toBase(env, ctx),
      processorFunctionName: env[ENV_KEYS.processorFunction],
      sleepMaxMinutes: env[ENV_KEYS.sleepMaxMinutes],
      retention: retentionNudgeOf(env[ENV_KEYS.retentionFunction], env[ENV_KEYS.retentionHourUtc]),
    }),
  );

const monitorSchema = z
  .object({ ...baseShape, ...monitorShape, [ENV_KEYS.notifierFunction]: optionalName, [ENV_KEYS.processorFunction]: optionalName })
  .transform(
    (env, ctx): MonitorConfig => ({
      ...toBase(env, ctx),
      notifierFunctionName: env[ENV_KEYS.notifierFunction],
      processorFunctionName: env[ENV_KEYS.processorFunction],
      monitor: toMonitorSettings(env),
    }),
  );

const retentionSchema = z
  .object({
    ...baseShape,
    [ENV_KEYS.retentionDays]: z.coerce.number().int('must be a whole number').min(0).max(MAX_RETENTION_DAYS).default(DEFAULT_RETENTION_DAYS),
  })
  .transform((env, ctx): RetentionConfig => ({ ...toBase(env, ctx), retentionDays: env[ENV_KEYS.retentionDays] }));

const notifierSchema = z
  .object({
    ...baseShape,
    ...notificationShape,
    [ENV_KEYS.alertTopicArn]: arnOf('sns'),
    [ENV_KEYS.metricsNamespace]: nonEmpty,
    [ENV_KEYS.slackWebhookUrlSecretArn]: z.optional(arnOf('secretsmanager')),
    [ENV_KEYS.webhookSecretParameter]: z.optional(parameterName),
  })
  .transform(
    (env, ctx): NotifierConfig => ({
      ...toBase(env, ctx),
      alertTopicArn: env[ENV_KEYS.alertTopicArn],
      metricsNamespace: env[ENV_KEYS.metricsNamespace],
      slackWebhookUrlSecretArn: env[ENV_KEYS.slackWebhookUrlSecretArn],
      webhookSecretParameter: env[ENV_KEYS.webhookSecretParameter],
      notification: toNotificationSettings(env),
    }),
  );

const provisionerSchema = z
  .object({ ...baseShape, [ENV_KEYS.workerQueues]: jsonOf(z.array(workerQueueBindingSchema)) })
  .transform((env, ctx): ProvisionerConfig => ({ ...toBase(env, ctx), workerQueues: env[ENV_KEYS.workerQueues] }));

/** A comma- or space-separated list. */
const listOf = z
  .string()
  .optional()
  .transform((text) => (text ?? '').split(/[,\s]+/).filter((item) => item !== ''));

const consoleShape = {
  [ENV_KEYS.consoleSecretArn]: z.optional(arnOf('secretsmanager')),
  [ENV_KEYS.oidcIssuer]: z.url({ protocol: /^https?$/ }).optional(),
  [ENV_KEYS.oidcClientId]: optionalName,
  [ENV_KEYS.oidcClientSecretArn]: z.optional(arnOf('secretsmanager')),
  [ENV_KEYS.oidcAllowedDomains]: listOf,
  [ENV_KEYS.consoleAdmins]: listOf,
  [ENV_KEYS.oidcAllowUnverifiedEmail]: z.enum(['true', 'false']).optional(),
  [ENV_KEYS.baseUrl]: z.url({ protocol: /^https?$/ }).optional(),
};
type ConsoleEnv = z.infer<z.ZodObject<typeof consoleShape>>;

/** The console binding when an issuer is set (every other console variable then required), else undefined. */
const toConsoleBinding = (env: ConsoleEnv, ctx: z.RefinementCtx): ApiConsoleBinding | undefined => {
  const oidcIssuer = env[ENV_KEYS.oidcIssuer];
  if (oidcIssuer === undefined) return undefined;
  const required = [ENV_KEYS.consoleSecretArn, ENV_KEYS.oidcClientId, ENV_KEYS.oidcClientSecretArn, ENV_KEYS.baseUrl] as const;
  for (const key of required) {
    if (env[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `is required with ${ENV_KEYS.oidcIssuer}` });
  }
  if (env[ENV_KEYS.oidcAllowedDomains].length === 0) {
    ctx.addIssue({ code: 'custom', path: [ENV_KEYS.oidcAllowedDomains], message: `is required with ${ENV_KEYS.oidcIssuer}` });
  }
  // Normalised by the console's own rules, so the api hands them over as they are (http/console-binding.ts).
  const admins = env[ENV_KEYS.consoleAdmins].map(normalizeEmail);
  for (const admin of admins) {
    if (!isEmailAddress(admin)) ctx.addIssue({ code: 'custom', path: [ENV_KEYS.consoleAdmins], message: `\`${admin}\` is not an email address` });
  }
  return {
    signingSecretArn: env[ENV_KEYS.consoleSecretArn] ?? '',
    oidcIssuer,
    oidcClientId: env[ENV_KEYS.oidcClientId] ?? '',
    oidcClientSecretArn: env[ENV_KEYS.oidcClientSecretArn] ?? '',
    allowedDomains: env[ENV_KEYS.oidcAllowedDomains].map(normalizeDomain),
    admins,
    ...(env[ENV_KEYS.oidcAllowUnverifiedEmail] === 'true' ? { allowUnverifiedEmail: true as const } : {}),
    baseUrl: trimBaseUrl(env[ENV_KEYS.baseUrl] ?? ''),
  };
};

const apiSchema = z
  .object({
    ...baseShape,
    ...consoleShape,
    [ENV_KEYS.declaredQueues]: z.optional(jsonOf(z.array(queueNameSchema))),
    [ENV_KEYS.processorFunction]: optionalName,
    [ENV_KEYS.notifierFunction]: optionalName,
    [ENV_KEYS.executionLogGroup]: optionalName,
  })
  .transform(
    (env, ctx): ApiConfig => ({
      ...toBase(env, ctx),
      declaredQueues: env[ENV_KEYS.declaredQueues] ?? [],
      processorFunctionName: env[ENV_KEYS.processorFunction],
      notifierFunctionName: env[ENV_KEYS.notifierFunction],
      executionLogGroupName: env[ENV_KEYS.executionLogGroup],
      console: toConsoleBinding(env, ctx),
    }),
  );

const migratorSchema = z
  .object({
    ...baseShape,
    [ENV_KEYS.apiClientsParameter]: z.optional(parameterName),
    [ENV_KEYS.webhookSecretParameter]: z.optional(parameterName),
    [ENV_KEYS.dbAgentSecretArn]: z.optional(arnOf('secretsmanager')),
    [ENV_KEYS.dbRuntimeSecretArn]: z.optional(arnOf('secretsmanager')),
  })
  .transform((env, ctx): MigratorConfig => ({
    ...toBase(env, ctx),
    apiClientsParameter: env[ENV_KEYS.apiClientsParameter],
    webhookSecretParameter: env[ENV_KEYS.webhookSecretParameter],
    databaseUserSecretArns: { agent: env[ENV_KEYS.dbAgentSecretArn], runtime: env[ENV_KEYS.dbRuntimeSecretArn] },
  }));

/** Reads the processor's configuration. */
export const parseProcessorConfig = (env: Environment): ProcessorConfig => parseWith(processorSchema, withCustomTasksField(env), 'processor');
/** Reads the scheduler's configuration. */
export const parseSchedulerConfig = (env: Environment): SchedulerConfig => parseWith(schedulerSchema, withCustomTasksField(env), 'scheduler');
/** Reads the monitor's configuration. */
export const parseMonitorConfig = (env: Environment): MonitorConfig => parseWith(monitorSchema, withCustomTasksField(env), 'monitor');
/** Reads the retention pass's configuration. */
export const parseRetentionConfig = (env: Environment): RetentionConfig => parseWith(retentionSchema, withCustomTasksField(env), 'retention');
/** Reads the notifier's configuration. */
export const parseNotifierConfig = (env: Environment): NotifierConfig => parseWith(notifierSchema, withCustomTasksField(env), 'notifier');
/** Reads the provisioner's configuration. */
export const parseProvisionerConfig = (env: Environment): ProvisionerConfig =>
  parseWith(provisionerSchema, withCustomTasksField(env), 'provisioner');
/** Reads the API function's configuration. */
export const parseApiConfig = (env: Environment): ApiConfig => parseWith(apiSchema, withCustomTasksField(env), 'api');
/** Reads the migrator's configuration. */
export const parseMigratorConfig = (env: Environment): MigratorConfig => parseWith(migratorSchema, withCustomTasksField(env), 'migrator');
