/**
 * The configuration of each Lambda function (and the worker agent's SSM parameter), read once at start.
 * Each `parse*Config` reads the environment it is given, reports every problem at once in a ConfigError, and
 * returns a typed object; code below the handler receives that object, never `process.env`.
 */
import { z } from 'zod';
import { ConfigError } from '../../core/errors';
import { ENV_KEYS, LOG_LEVELS } from './env-keys';

/** A process environment: `process.env` in production, a plain object in tests. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** Where the Data API reaches Aurora. */
export interface DatabaseConfig {
  readonly clusterArn: string;
  readonly secretArn: string;
  readonly databaseName: string;
  /** A Data API endpoint override (tests against the local Data API server); unset in AWS. */
  readonly endpoint?: string;
}

/** What every function shares. */
export interface BaseConfig {
  readonly stage: string;
  readonly database: DatabaseConfig;
  readonly logLevel: (typeof LOG_LEVELS)[number];
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
}

export interface ProcessorConfig extends BaseConfig {
  /** Nudged after a step that wrote events, so notifications do not wait for the next minute. */
  readonly notifierFunctionName: string | undefined;
}
export interface SchedulerConfig extends BaseConfig {
  /** Nudged after a cron launch, so the first step does not wait for the next minute. */
  readonly processorFunctionName: string | undefined;
}
export interface MonitorConfig extends BaseConfig {
  readonly notifierFunctionName: string | undefined;
  /** Nudged after executions were finished as lost, so their tokens fail without waiting for the next minute. */
  readonly processorFunctionName: string | undefined;
}
export interface NotifierConfig extends BaseConfig {
  readonly alertTopicArn: string;
  readonly metricsNamespace: string;
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
/** Where the api finds the console's settings; the two secrets are read from Secrets Manager at cold start. */
export interface ApiConsoleBinding {
  readonly signingSecretArn: string;
  readonly oidcIssuer: string;
  readonly oidcClientId: string;
  readonly oidcClientSecretArn: string;
  readonly allowedDomains: readonly string[];
  readonly admins: readonly string[];
  /** The HTTP API's public URL: redirect URIs and secure cookies are built from it. */
  readonly baseUrl: string;
}
export interface MigratorConfig extends BaseConfig {
  /** A Secrets Manager secret `{"name","secret"}` for the first admin API client, created if absent. */
  readonly apiClientsSecretArn: string | undefined;
}

/** The JSON held in each worker queue's SSM parameter, read by the agent at boot. */
export interface AgentParameter {
  readonly stage: string;
  readonly region: string;
  readonly database: DatabaseConfig;
  readonly queue: string;
  readonly slots: number;
  readonly idleMinutes: number;
  readonly executionLogGroupName: string;
  readonly processorFunctionName: string;
  /** After an idle (or drain-requested) stop, run `shutdown -h now`; instances terminate on shutdown. */
  readonly shutdownWhenIdle?: boolean;
}

const QUEUE_NAME = /^@?[\w-]{1,180}$/;
const ARN = /^arn:aws[a-z-]*:/;

const requiredString = z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });
const nonEmpty = requiredString.trim().min(1, 'is required');
const arnOf = (service: string) =>
  nonEmpty.refine((v) => ARN.test(v) && v.split(':')[2] === service, `must be an ARN of ${service}`);
const optionalName = z.string().trim().min(1).optional();

/** A JSON-encoded environment value, validated by `schema` after decoding. */
const jsonOf = <T extends z.ZodType>(schema: T) =>
  nonEmpty
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const queueNameSchema = requiredString.regex(QUEUE_NAME, 'is not a queue name (@?[\\w-]{1,180})');

const databaseSchema = z.object({
  clusterArn: arnOf('rds'),
  secretArn: arnOf('secretsmanager'),
  databaseName: requiredString.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'is not a database name'),
  endpoint: z.url().optional(),
});

const workerQueueBindingSchema = z
  .object({
    name: queueNameSchema,
    launchTemplateId: nonEmpty,
    subnetIds: z.array(nonEmpty).min(1),
    slotsPerWorker: z.int().min(1),
    minInstances: z.int().min(0),
    maxInstances: z.int().min(1),
    idleMinutes: z.int().min(1),
    launchTemplateVersion: nonEmpty.optional(),
    bootTimeoutMinutes: z.int().min(1).optional(),
  })
  .refine((q) => q.minInstances <= q.maxInstances, 'minInstances must not exceed maxInstances');

const baseShape = {
  [ENV_KEYS.stage]: nonEmpty,
  [ENV_KEYS.dbClusterArn]: arnOf('rds'),
  [ENV_KEYS.dbSecretArn]: arnOf('secretsmanager'),
  [ENV_KEYS.dbName]: databaseSchema.shape.databaseName,
  [ENV_KEYS.powertoolsLogLevel]: z.enum(LOG_LEVELS).default('INFO'),
  [ENV_KEYS.dataApiEndpoint]: z.url().optional(),
};
type BaseEnv = z.infer<z.ZodObject<typeof baseShape>>;

const toBase = (env: BaseEnv): BaseConfig => ({
  stage: env[ENV_KEYS.stage],
  logLevel: env[ENV_KEYS.powertoolsLogLevel],
  database: {
    clusterArn: env[ENV_KEYS.dbClusterArn],
    secretArn: env[ENV_KEYS.dbSecretArn],
    databaseName: env[ENV_KEYS.dbName],
    ...(env[ENV_KEYS.dataApiEndpoint] !== undefined ? { endpoint: env[ENV_KEYS.dataApiEndpoint] } : {}),
  },
});

/** Validates `input` against `schema`, or throws a ConfigError naming every offending key. */
export function parseWith<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const where = issue.path.length > 0 ? issue.path.join('.') : what;
      return `${where}: ${issue.message}`;
    }),
  );
}

const processorSchema = z
  .object({ ...baseShape, [ENV_KEYS.notifierFunction]: optionalName })
  .transform((env): ProcessorConfig => ({ ...toBase(env), notifierFunctionName: env[ENV_KEYS.notifierFunction] }));

const schedulerSchema = z
  .object({ ...baseShape, [ENV_KEYS.processorFunction]: optionalName })
  .transform((env): SchedulerConfig => ({ ...toBase(env), processorFunctionName: env[ENV_KEYS.processorFunction] }));

const monitorSchema = z
  .object({ ...baseShape, [ENV_KEYS.notifierFunction]: optionalName, [ENV_KEYS.processorFunction]: optionalName })
  .transform(
    (env): MonitorConfig => ({
      ...toBase(env),
      notifierFunctionName: env[ENV_KEYS.notifierFunction],
      processorFunctionName: env[ENV_KEYS.processorFunction],
    }),
  );

const notifierSchema = z
  .object({
    ...baseShape,
    [ENV_KEYS.alertTopicArn]: arnOf('sns'),
    [ENV_KEYS.metricsNamespace]: nonEmpty,
  })
  .transform(
    (env): NotifierConfig => ({
      ...toBase(env),
      alertTopicArn: env[ENV_KEYS.alertTopicArn],
      metricsNamespace: env[ENV_KEYS.metricsNamespace],
    }),
  );

const provisionerSchema = z
  .object({ ...baseShape, [ENV_KEYS.workerQueues]: jsonOf(z.array(workerQueueBindingSchema)) })
  .transform((env): ProvisionerConfig => ({ ...toBase(env), workerQueues: env[ENV_KEYS.workerQueues] }));

/** A comma- or space-separated list. */
const listOf = z
  .string()
  .optional()
  .transform((text) => (text ?? '').split(/[,\s]+/).filter((item) => item !== ''));

const consoleShape = {
  [ENV_KEYS.consoleSecretArn]: arnOf('secretsmanager').optional(),
  [ENV_KEYS.oidcIssuer]: z.url({ protocol: /^https?$/ }).optional(),
  [ENV_KEYS.oidcClientId]: optionalName,
  [ENV_KEYS.oidcClientSecretArn]: arnOf('secretsmanager').optional(),
  [ENV_KEYS.oidcAllowedDomains]: listOf,
  [ENV_KEYS.consoleAdmins]: listOf,
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
  return {
    signingSecretArn: env[ENV_KEYS.consoleSecretArn] ?? '',
    oidcIssuer,
    oidcClientId: env[ENV_KEYS.oidcClientId] ?? '',
    oidcClientSecretArn: env[ENV_KEYS.oidcClientSecretArn] ?? '',
    allowedDomains: env[ENV_KEYS.oidcAllowedDomains],
    admins: env[ENV_KEYS.consoleAdmins],
    baseUrl: env[ENV_KEYS.baseUrl] ?? '',
  };
};

const apiSchema = z
  .object({
    ...baseShape,
    ...consoleShape,
    [ENV_KEYS.declaredQueues]: jsonOf(z.array(queueNameSchema)).optional(),
    [ENV_KEYS.processorFunction]: optionalName,
    [ENV_KEYS.notifierFunction]: optionalName,
    [ENV_KEYS.executionLogGroup]: optionalName,
  })
  .transform(
    (env, ctx): ApiConfig => ({
      ...toBase(env),
      declaredQueues: env[ENV_KEYS.declaredQueues] ?? [],
      processorFunctionName: env[ENV_KEYS.processorFunction],
      notifierFunctionName: env[ENV_KEYS.notifierFunction],
      executionLogGroupName: env[ENV_KEYS.executionLogGroup],
      console: toConsoleBinding(env, ctx),
    }),
  );

const migratorSchema = z
  .object({ ...baseShape, [ENV_KEYS.apiClientsSecretArn]: arnOf('secretsmanager').optional() })
  .transform((env): MigratorConfig => ({ ...toBase(env), apiClientsSecretArn: env[ENV_KEYS.apiClientsSecretArn] }));

const agentParameterSchema = z.object({
  stage: nonEmpty,
  region: nonEmpty,
  database: databaseSchema,
  queue: queueNameSchema,
  slots: z.int().min(1),
  idleMinutes: z.int().min(1),
  executionLogGroupName: nonEmpty,
  processorFunctionName: nonEmpty,
  shutdownWhenIdle: z.boolean().optional(),
}) satisfies z.ZodType<AgentParameter>;

/** Reads the processor's configuration. */
export const parseProcessorConfig = (env: Environment): ProcessorConfig => parseWith(processorSchema, env, 'processor');
/** Reads the scheduler's configuration. */
export const parseSchedulerConfig = (env: Environment): SchedulerConfig => parseWith(schedulerSchema, env, 'scheduler');
/** Reads the monitor's configuration. */
export const parseMonitorConfig = (env: Environment): MonitorConfig => parseWith(monitorSchema, env, 'monitor');
/** Reads the notifier's configuration. */
export const parseNotifierConfig = (env: Environment): NotifierConfig => parseWith(notifierSchema, env, 'notifier');
/** Reads the provisioner's configuration. */
export const parseProvisionerConfig = (env: Environment): ProvisionerConfig =>
  parseWith(provisionerSchema, env, 'provisioner');
/** Reads the API function's configuration. */
export const parseApiConfig = (env: Environment): ApiConfig => parseWith(apiSchema, env, 'api');
/** Reads the migrator's configuration. */
export const parseMigratorConfig = (env: Environment): MigratorConfig => parseWith(migratorSchema, env, 'migrator');
/** Reads the JSON of a worker queue's SSM parameter (the agent's configuration on AWS). */
export const parseAgentParameter = (json: string): AgentParameter =>
  parseWith(jsonOf(agentParameterSchema), json, 'agent parameter');
