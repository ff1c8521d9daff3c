/**
 * The deploy configuration of the CDK app: a JSON file named by the context value `config`
 * (`cdk deploy -c config=deploy.json`) or by `KUROKO_DEPLOY_CONFIG`; without one, defaults that synthesise.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCustomTasks } from '../core/dsl/custom-tasks';
import { ConfigError } from '../core/errors';
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from '../core/services/retention-service';
import { SLEEP_MAX_MINUTES } from '../app/config/env-keys';

/** CloudWatch Logs accepts only these retention periods (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export const ARCHITECTURES = { arm64: 'arm64', x86_64: 'x86_64' } as const;
export type Architecture = (typeof ARCHITECTURES)[keyof typeof ARCHITECTURES];

/** Aurora Serverless v2 accepts capacities in half-ACU steps up to 256. */
const ACU_STEP = 0.5;
const MAX_ACU = 256;
const MAX_BACKUP_RETENTION_DAYS = 35;
const MIN_AUTO_PAUSE_MINUTES = 5;
const MAX_AUTO_PAUSE_MINUTES = 1440;
const MAX_SLOTS_PER_WORKER = 64;

/**
 * Graviton instance types carry a `g` in the suffix after the generation digit (t4g, m7gd, c7gn, x2gd);
 * a GPU family like g5 does not. The first Graviton family, a1, has no such suffix.
 */
const INSTANCE_TYPE = /^([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)$/;
const SUFFIXLESS_ARM_FAMILIES: ReadonlySet<string> = new Set(['a1']);
export function architectureOfInstanceType(instanceType: string): Architecture | undefined {
  const match = INSTANCE_TYPE.exec(instanceType);
  if (!match) return undefined;
  if (SUFFIXLESS_ARM_FAMILIES.has(`${match[1]}${match[2]}${match[3]}`)) return ARCHITECTURES.arm64;
  return (match[3] ?? '').includes('g') ? ARCHITECTURES.arm64 : ARCHITECTURES.x86_64;
}

const acu = z
  .number()
  .min(0)
  .max(MAX_ACU)
  .refine((v) => Number.isInteger(v / ACU_STEP), 'must be a multiple of 0.5 ACU');

const workerQueueSchema = z
  .strictObject({
    name: z.string().regex(/^@?[\w-]{1,180}$/, 'is not a queue name (@?[\\w-]{1,180})'),
    instanceType: z.string().regex(INSTANCE_TYPE, 'is not an EC2 instance type').default('t4g.small'),
    architecture: z.enum(ARCHITECTURES).default('arm64'),
    slotsPerWorker: z.int().min(1).max(MAX_SLOTS_PER_WORKER).default(2),
    minInstances: z.int().min(0).default(0),
    maxInstances: z.int().min(1).default(2),
    idleMinutes: z.int().min(1).default(10),
    volumeGiB: z.int().min(8).max(16_384).default(16),
  })
  .superRefine((q, ctx) => {
    if (q.minInstances > q.maxInstances) {
      ctx.addIssue({ code: 'custom', path: ['minInstances'], message: 'must not exceed maxInstances' });
    }
    const implied = architectureOfInstanceType(q.instanceType);
    if (implied !== undefined && implied !== q.architecture) {
      ctx.addIssue({
        code: 'custom',
        path: ['architecture'],
        message: `${q.instanceType} is ${implied}, not ${q.architecture}`,
      });
    }
  });

const newVpcSchema = z.strictObject({
  mode: z.literal('new'),
  cidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'is not a CIDR block').default('10.64.0.0/16'),
  maxAzs: z.int().min(2).max(6).default(2),
});

const existingVpcSchema = z.strictObject({
  mode: z.literal('existing'),
  vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'is not a VPC id'),
  availabilityZones: z.array(z.string().min(1)).min(2),
  /** Private or isolated subnets in at least two AZs (an Aurora subnet group needs two). */
  databaseSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'is not a subnet id')).min(2),
  /** Subnets for workers: they need outbound HTTPS (public IP, NAT or VPC endpoints). */
  workerSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'is not a subnet id')).min(1),
  /** True when the worker subnets are public and instances need a public IP to reach AWS APIs. */
  workerSubnetsArePublic: z.boolean().default(false),
});

const auroraSchema = z
  .strictObject({
    minCapacity: acu.default(0),
    maxCapacity: acu.min(1).default(4),
    // The shortest Aurora allows: with idle sleep the engine leaves the database alone between due work, so each
    // minute more is billed awake time for nothing (npm run bench:idle); the cost is a resume for a later request.
    autoPauseMinutes: z.int().min(MIN_AUTO_PAUSE_MINUTES).max(MAX_AUTO_PAUSE_MINUTES).default(MIN_AUTO_PAUSE_MINUTES),
    backupRetentionDays: z.int().min(1).max(MAX_BACKUP_RETENTION_DAYS).default(7),
    deletionProtection: z.boolean().default(true),
    /** What deleting the stack does to the cluster: keep it, or keep a final snapshot. */
    removalPolicy: z.enum(['retain', 'snapshot']).default('snapshot'),
  })
  .refine((a) => a.minCapacity <= a.maxCapacity, { path: ['minCapacity'], message: 'must not exceed maxCapacity' });

/** A secret's complete ARN, with the six-character suffix Secrets Manager appends to its name. */
export const COMPLETE_SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$/;
const SECRET_NAME = /^[\w/+=.@-]{1,512}$/;
const EMAIL_DOMAIN = /^@?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i;

/** A Secrets Manager secret the operator created, by complete ARN or by name (same account and region). */
const operatorSecret = z
  .string()
  .refine((v) => COMPLETE_SECRET_ARN.test(v) || (!v.startsWith('arn:') && SECRET_NAME.test(v)), 'is neither the complete ARN of a Secrets Manager secret nor a secret name');

/**
 * The web console's sign-in. Without `oidcIssuer` the console is not served (the API works alone); with it,
 * the client id, the client secret (a Secrets Manager secret the operator creates) and the allowed domains are
 * required too.
 */
const consoleSchema = z
  .strictObject({
    oidcIssuer: z.url({ protocol: /^https$/, error: 'must be the https URL of the OpenID Connect issuer' }).optional(),
    oidcClientId: z.string().trim().min(1).optional(),
    /** The complete ARN, or the name, of a Secrets Manager secret (same account and region) holding the client secret. */
    oidcClientSecretArn: operatorSecret.optional(),
    /** Email domains (or Google Workspace `hd` values) allowed to sign in; `*` lets any verified email in. */
    allowedDomains: z.array(z.string().refine((d) => d === '*' || EMAIL_DOMAIN.test(d), 'is not an email domain (or *)')).default([]),
    /** Emails of the console's global admins. */
    admins: z.array(z.email()).default([]),
    /**
     * For a provider that never sends `email_verified`: let such people in, as viewers only (admins always need a
     * verified email; docs/security.md). Off by default.
     */
    allowUnverifiedEmail: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const oidcSet = c.oidcIssuer !== undefined || c.oidcClientId !== undefined || c.oidcClientSecretArn !== undefined;
    if (!oidcSet) return;
    for (const key of ['oidcIssuer', 'oidcClientId', 'oidcClientSecretArn'] as const) {
      if (c[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is required to sign in to the console with OpenID Connect' });
    }
    if (c.allowedDomains.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['allowedDomains'], message: 'is required with OpenID Connect: the email domains allowed to sign in, or *' });
    }
  });

/**
 * Idle sleep: with nothing in flight the one-minute ticks leave the database alone until just before the next due
 * cron slot or reminder, however far away, so Aurora pauses (app/lambda/lambda-sleep.ts). `maxMinutes`, when set,
 * caps a sleep: the ticks then touch the database at least that often, and Aurora wakes for autoPauseMinutes each time.
 */
const idleSleepSchema = z.strictObject({
  enabled: z.boolean().default(true),
  maxMinutes: z.int().min(SLEEP_MAX_MINUTES.min).max(SLEEP_MAX_MINUTES.max).optional(),
});

/**
 * The retention pass (core/services/retention-service.ts), a Lambda on its own daily schedule: `days` is the global
 * policy (0 keeps forever; a definition's `retention_days` overrides it), `hourUtc` when the pass runs. Command
 * output in CloudWatch Logs follows `logRetentionDays` instead.
 */
const retentionSchema = z.strictObject({
  days: z.int().min(0).max(MAX_RETENTION_DAYS).default(DEFAULT_RETENTION_DAYS),
  hourUtc: z.int().min(0).max(23).default(4),
});

/** Notification channels beyond the alert topic (definition webhooks are always signed with a generated key). */
const notificationsSchema = z.strictObject({
  /** A secret holding the Slack incoming-webhook URL (https://hooks.slack.com/...); without it there is no Slack. */
  slackWebhookUrlSecret: operatorSecret.optional(),
});

/**
 * Bytes the custom task mapping may take as JSON: it travels in the processor's and the API's environment, and
 * Lambda allows 4 KB for all of a function's variables together
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), so half is left for the others.
 */
export const CUSTOM_TASKS_MAX_BYTES = 2048;

/** Custom task types (core/dsl/custom-tasks.ts): a task name mapped to its command template. */
const customTasksSchema = z
  .record(z.string(), z.string())
  .superRefine((value, ctx) => {
    const result = parseCustomTasks(value);
    if (!result.ok) for (const message of result.problems) ctx.addIssue({ code: 'custom', message });
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes > CUSTOM_TASKS_MAX_BYTES) ctx.addIssue({ code: 'custom', message: `takes ${bytes} bytes as JSON; at most ${CUSTOM_TASKS_MAX_BYTES} fit in the Lambdas' environment` });
  });

export const deployConfigSchema = z
  .strictObject({
    stageName: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,15}$/, 'must be lower-case letters, digits and dashes, 16 at most')
      .default('dev'),
    alertEmail: z.email().optional(),
    vpc: z.discriminatedUnion('mode', [newVpcSchema, existingVpcSchema]).prefault({ mode: 'new' }),
    workerQueues: z
      .array(workerQueueSchema)
      .min(1)
      .prefault([{ name: '@default' }])
      .refine((qs) => new Set(qs.map((q) => q.name)).size === qs.length, 'queue names must be unique'),
    aurora: auroraSchema.prefault({}),
    logRetentionDays: z
      .int()
      .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
        message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(30),
    databaseName: z.string().regex(/^[a-z_][a-z0-9_]{0,63}$/, 'is not a database name').default('kuroko'),
    console: consoleSchema.prefault({}),
    notifications: notificationsSchema.prefault({}),
    idleSleep: idleSleepSchema.prefault({}),
    retention: retentionSchema.prefault({}),
    /** `kmsKey: true` encrypts the alert topic with a customer managed key (cdk/constructs/alert-topic.ts). */
    alerts: z.strictObject({ kmsKey: z.boolean().default(false) }).prefault({}),
    customTasks: customTasksSchema.default({}),
  });

export type DeployConfig = z.output<typeof deployConfigSchema>;
export type WorkerQueueConfig = DeployConfig['workerQueues'][number];
export type VpcConfig = DeployConfig['vpc'];
export type ConsoleDeployConfig = DeployConfig['console'];

/** The console's OpenID Connect settings when they are complete, else undefined (no console is served). */
export function consoleOidcOf(settings: ConsoleDeployConfig) {
  const { oidcIssuer, oidcClientId, oidcClientSecretArn } = settings;
  if (oidcIssuer === undefined || oidcClientId === undefined || oidcClientSecretArn === undefined) return undefined;
  return {
    oidcIssuer,
    oidcClientId,
    oidcClientSecretArn,
    allowedDomains: settings.allowedDomains,
    admins: settings.admins,
    allowUnverifiedEmail: settings.allowUnverifiedEmail,
  };
}

/** Validates a deploy configuration object, listing every problem at once. */
export function parseDeployConfig(input: unknown, source = 'deploy config'): DeployConfig {
  const result = deployConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => `${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`),
  );
}

/** Where the app looks for its configuration. */
export interface DeployConfigSources {
  /** The `config` context value, if any. */
  readonly contextPath: unknown;
  /** `process.env` or a stand-in. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile?: (path: string) => string;
}

export const DEPLOY_CONFIG_ENV = 'KUROKO_DEPLOY_CONFIG';

/** Loads the deploy configuration named by context or environment, or the defaults when none is named. */
export function loadDeployConfig(sources: DeployConfigSources): DeployConfig {
  const named = typeof sources.contextPath === 'string' && sources.contextPath !== '' ? sources.contextPath : undefined;
  const path = named ?? sources.env[DEPLOY_CONFIG_ENV];
  if (path === undefined || path === '') return parseDeployConfig({}, 'defaults');
  const read = sources.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    throw new ConfigError([`${path}: cannot be read (${(error as Error).message})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${path}: is not valid JSON (${(error as Error).message})`]);
  }
  return parseDeployConfig(json, path);
}
