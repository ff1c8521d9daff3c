/**
 * The configuration building blocks shared by the Lambda configs (config.ts) and the worker agent's SSM parameter,
 * which is parsed here. Written with zod/mini: the EC2 agent reads its parameter with them and, not importing
 * config.ts, never loads the whole of zod (about 14 MB of its resident memory). Schemas built with zod's full API
 * accept these as parts.
 */
import * as z from 'zod/mini';
import { ConfigError } from '../../core/errors';

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
  /** The queue keeps this many live workers: an idle agent among them does not leave (agent/idle-exit.ts). */
  readonly minInstances?: number;
  /** The SQS doorbell the processor rings when it queued commands (adapters/aws/sqs-doorbell.ts); issue 18. */
  readonly doorbellQueueUrl?: string;
}

const QUEUE_NAME = /^@?[\w-]{1,180}$/;
const ARN = /^arn:aws[a-z-]*:/;

const requiredString = z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') });
export const nonEmpty = requiredString.check(z.trim(), z.minLength(1, 'is required'));
export const arnOf = (service: string) =>
  nonEmpty.check(z.refine((v) => ARN.test(v) && v.split(':')[2] === service, `must be an ARN of ${service}`));
/** A whole number of at least `min`. */
export const intAtLeast = (min: number) => z.int({ error: 'must be a whole number' }).check(z.gte(min, `must be at least ${min}`));

/** A JSON-encoded value, validated by `schema` after decoding. */
export const jsonOf = <T extends z.core.$ZodType>(schema: T) =>
  z.pipe(
    z.pipe(
      nonEmpty,
      z.transform((text: string, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.issues.push({ code: 'custom', message: 'is not valid JSON', input: text });
          return z.NEVER;
        }
      }),
    ),
    schema,
  );

export const queueNameSchema = requiredString.check(z.regex(QUEUE_NAME, 'is not a queue name (@?[\\w-]{1,180})'));
export const databaseNameSchema = requiredString.check(z.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'is not a database name'));

const databaseSchema = z.object({
  clusterArn: arnOf('rds'),
  secretArn: arnOf('secretsmanager'),
  databaseName: databaseNameSchema,
  endpoint: z.optional(z.url({ error: 'must be a URL' })),
});

/** Validates `input` against `schema` (zod or zod/mini), or throws a ConfigError naming every offending key. */
export function parseWith<T extends z.core.$ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = z.safeParse(schema, input);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const where = issue.path.length > 0 ? issue.path.join('.') : what;
      return `${where}: ${issue.message}`;
    }),
  );
}

const agentParameterSchema = z.object({
  stage: nonEmpty,
  region: nonEmpty,
  database: databaseSchema,
  queue: queueNameSchema,
  slots: intAtLeast(1),
  idleMinutes: intAtLeast(1),
  executionLogGroupName: nonEmpty,
  processorFunctionName: nonEmpty,
  shutdownWhenIdle: z.optional(z.boolean({ error: 'must be true or false' })),
  minInstances: z.optional(intAtLeast(0)),
  doorbellQueueUrl: z.optional(nonEmpty),
}) satisfies z.ZodMiniType<AgentParameter>;

/** Reads the JSON of a worker queue's SSM parameter (the agent's configuration on AWS). */
export const parseAgentParameter = (json: string): AgentParameter => parseWith(jsonOf(agentParameterSchema), json, 'agent parameter');
