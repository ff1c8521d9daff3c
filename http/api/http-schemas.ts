/**
 * Request and response schemas of the v1 API. The same zod objects validate requests, check responses and
 * generate `/v1/openapi.json`. Request schemas accept what Kuroko2's Rails params accepted (`"true"`, `"1"`,
 * numeric strings) and ignore unknown fields (`hipchat_room`, `user_id`...), so existing clients work unchanged.
 */
import { z } from '@hono/zod-openapi';
import { DEFINITION_LIMITS } from '../../core/definitions/definition-rules';
import { ERROR_CODE, FALLBACK_ERROR_CODE, REQUIRED_MESSAGE } from '../http-errors';

/** Bounds on what one request may carry; each has a clear 4xx. */
export interface HttpLimits {
  /** Request body bytes (413 beyond). */
  maxBodyBytes: number;
  /** `limit` of list endpoints. */
  maxPageSize: number;
  /** Characters of a definition's or an ad-hoc script. */
  maxScriptLength: number;
  maxEnvEntries: number;
  maxEnvKeyLength: number;
  /** Characters of one env value. */
  maxEnvValueLength: number;
  maxIdempotencyKeyLength: number;
}

const MIB = 1024 * 1024;
const KIB = 1024;

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxBodyBytes: MIB,
  maxPageSize: 1000,
  maxScriptLength: 64 * KIB,
  maxEnvEntries: 100,
  maxEnvKeyLength: 128,
  maxEnvValueLength: 32 * KIB,
  // The idempotency_key column is VARCHAR(255).
  maxIdempotencyKeyLength: 255,
};

export const DEFAULT_PAGE_SIZE = 100;

/** An environment variable name as a shell accepts it. */
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ID_PATTERN = /^[1-9]\d{0,15}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Text that is valid Unicode: a lone surrogate (legal in JSON, `"\ud800"`) would fail on MySQL's utf8mb4 columns
 * deep inside a transaction, so it is refused up front.
 */
const text = (options: { required?: boolean } = {}) =>
  z
    .string(options.required ? { error: (issue) => (issue.input === undefined ? REQUIRED_MESSAGE : undefined) } : undefined)
    .refine((s) => !LONE_SURROGATE.test(s), 'must be valid Unicode text (no lone surrogates)');

/** Rails' boolean casting as Kuroko2 saw it: true/false, "true"/"false", "1"/"0", 1/0. */
const flexibleBooleanOf = (params?: Parameters<typeof z.union>[1]) =>
  z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0']), z.literal(0), z.literal(1)], params)
    .transform((v) => v === true || v === 'true' || v === '1' || v === 1)
    .openapi({ type: 'boolean', description: 'true/false (also "true", "false", "1", "0", 1, 0 as Kuroko2 accepted)' });
const flexibleBoolean = flexibleBooleanOf();
/** Required: a missing value says REQUIRED_MESSAGE, which the hook answers with 422 like any missing field. */
const requiredFlexibleBoolean = flexibleBooleanOf({ error: (issue) => (issue.input === undefined ? REQUIRED_MESSAGE : undefined) });

const flexibleInteger = z
  .union([z.number().int(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'number' || /^-?\d{1,9}$/.test(v)) return Number(v);
    // A word where a number belongs is a wrong type (400), not a number that breaks a rule (422).
    ctx.addIssue({ code: 'invalid_type', expected: 'int', input: v, message: 'must be an integer' });
    return z.NEVER;
  })
  .openapi({ type: 'integer', description: 'an integer (a numeric string is accepted as Kuroko2 did)' });

/** A flexible integer within bounds, the bounds declared in the document too (the pipe's own are not). */
const boundedInteger = (min: number, max: number) =>
  flexibleInteger.pipe(z.number().int().min(min).max(max)).openapi({ type: 'integer', minimum: min, maximum: max, description: `${min} to ${max} (a numeric string is accepted as Kuroko2 did)` });

/**
 * `retention_days`: a bounded integer or null. The document says nullable itself: the integer's own `type` would
 * otherwise hide the null (OpenAPI 3.0 has no null type; zod-to-openapi's metadata type leaves `nullable` out).
 */
const retentionDaysDoc = {
  type: 'integer',
  nullable: true,
  minimum: 0,
  maximum: DEFINITION_LIMITS.retentionDays,
  description: `days finished and canceled instances are kept, 0 to ${DEFINITION_LIMITS.retentionDays}; null follows the global policy (KUROKO_RETENTION_DAYS, 90 by default), 0 keeps them forever`,
} as const;

/** Ids past 2^53 - 1 would be rounded by Number (and name another record), so they are refused, not rounded. */
const SAFE_ID = (s: string) => Number.isSafeInteger(Number(s));
const SAFE_ID_MESSAGE = `must be an id of at most ${Number.MAX_SAFE_INTEGER}`;

const idParam = (name: string) =>
  z
    .string()
    .regex(ID_PATTERN, 'must be a positive integer id')
    .refine(SAFE_ID, SAFE_ID_MESSAGE)
    .transform(Number)
    .openapi({ param: { name, in: 'path' }, type: 'integer', example: 1 });

export const definitionParams = z.object({ id: idParam('id') });
export const instanceParams = z.object({ id: idParam('id'), instance_id: idParam('instance_id') });
export const executionParams = z.object({ id: idParam('id'), instance_id: idParam('instance_id'), execution_id: idParam('execution_id') });
export const tokenParams = z.object({ id: idParam('id'), instance_id: idParam('instance_id'), token_id: idParam('token_id') });
export const workerParams = z.object({ id: idParam('id') });

/** Builds every schema that depends on the limits. */
export function buildSchemas(limits: HttpLimits) {
  const pageLimit = z
    .string()
    .regex(/^\d{1,7}$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(1).max(limits.maxPageSize))
    .optional()
    .openapi({ type: 'integer', minimum: 1, maximum: limits.maxPageSize, description: `page size, default ${DEFAULT_PAGE_SIZE}` });

  const tagName = text().openapi({ maxLength: DEFINITION_LIMITS.tagLength });
  const cronList = z.array(text().max(DEFINITION_LIMITS.cronLength)).max(DEFINITION_LIMITS.crons);

  const definitionFields = {
      name: text({ required: true }).max(DEFINITION_LIMITS.nameLength).optional(),
      description: text().max(DEFINITION_LIMITS.descriptionBytes).optional().openapi({ description: `Markdown, at most ${DEFINITION_LIMITS.descriptionBytes} bytes of UTF-8 (a Japanese character takes 3); longer is a 422` }),
      script: text().max(limits.maxScriptLength).optional().openapi({ description: `at most ${DEFINITION_LIMITS.scriptBytes} bytes of UTF-8; longer is a 422` }),
      tags: z.array(tagName.max(DEFINITION_LIMITS.tagLength)).max(DEFINITION_LIMITS.tags).optional(),
      text_tags: text().max(DEFINITION_LIMITS.tags * DEFINITION_LIMITS.tagLength).optional().openapi({ description: "Kuroko2's comma-separated tags; `tags` wins when both are given" }),
      cron: cronList.optional(),
      suspend_cron: cronList.optional(),
      time_zone: text().max(DEFINITION_LIMITS.timeZoneLength).optional(),
      notify_cancellation: flexibleBoolean.optional(),
      hipchat_notify_finished: flexibleBoolean.optional(),
      notify_all: flexibleBoolean.optional().openapi({ description: 'the same flag as hipchat_notify_finished' }),
      suspended: flexibleBoolean.optional(),
      prevent_multi: boundedInteger(0, 3).optional(),
      api_allowed: flexibleBoolean.optional(),
      slack_channel: text().max(DEFINITION_LIMITS.slackChannelLength).optional(),
      webhook_url: text().max(DEFINITION_LIMITS.webhookUrlLength).nullable().optional(),
      catch_up_window_minutes: boundedInteger(0, DEFINITION_LIMITS.catchUpWindowMinutes).optional(),
      retention_days: boundedInteger(0, DEFINITION_LIMITS.retentionDays).nullable().optional().openapi(retentionDaysDoc),
  };
  const definitionWrite = z.object(definitionFields).openapi('JobDefinitionInput');

  // Its own flat object rather than an extension of JobDefinitionInput: the extension is documented as an `allOf`
  // that generators turn into `JobDefinitionInput & Record<string, never>` with name and script optional.
  const definitionCreate = z
    .object({
      ...definitionFields,
      name: text({ required: true }).max(DEFINITION_LIMITS.nameLength),
      script: text({ required: true }).max(limits.maxScriptLength).openapi({ description: `at most ${DEFINITION_LIMITS.scriptBytes} bytes of UTF-8; longer is a 422` }),
    })
    .openapi('JobDefinitionCreate');

  const env = z
    .record(
      z
        .string()
        .max(limits.maxEnvKeyLength, `an env name is longer than ${limits.maxEnvKeyLength} characters`)
        .regex(ENV_KEY_PATTERN, 'an env name must match [A-Za-z_][A-Za-z0-9_]*')
        .refine((k) => !UNSAFE_KEYS.has(k), 'an env name may not be __proto__, constructor or prototype'),
      text().max(limits.maxEnvValueLength),
    )
    .refine((e) => Object.keys(e).length <= limits.maxEnvEntries, `at most ${limits.maxEnvEntries} env variables are allowed`)
    .openapi({ description: 'environment variables for every command of the instance; values must be strings' });

  const launch = z
    .object({
      env: env.optional(),
      script: text().max(limits.maxScriptLength).optional().openapi({ description: `an ad-hoc script run instead of the definition's (validated first); at most ${DEFINITION_LIMITS.scriptBytes} bytes of UTF-8` }),
    })
    .openapi('LaunchInput');

  const idempotencyHeader = z.object({
    'idempotency-key': z
      .string()
      .min(1)
      .max(limits.maxIdempotencyKeyLength)
      .optional()
      .openapi({ param: { name: 'idempotency-key', in: 'header' }, description: 'a repeated launch with the same key, env and script returns the first instance; the same key with another env or script is refused (422)' }),
  });

  /** An id given in the query string, optional. */
  const optionalIdQuery = () => z.string().regex(ID_PATTERN, 'must be a positive integer id').refine(SAFE_ID, SAFE_ID_MESSAGE).transform(Number).optional();

  const definitionListQuery = z.object({
    'tags[]': z.union([z.string(), z.array(z.string())]).optional().openapi({ param: { name: 'tags[]', in: 'query', style: 'form', explode: true } }),
    tags: z.union([z.string(), z.array(z.string())]).optional(),
    // Kuroko2 returns every definition; these page through them for clients that ask.
    limit: pageLimit.openapi({ description: 'at most this many definitions (all of them when absent)' }),
    after_id: optionalIdQuery().openapi({ type: 'integer', description: 'only definitions with a greater id: the last id of the previous page' }),
  });

  const instanceListQuery = z.object({
    status: z.enum(['working', 'success', 'canceled', 'error']).optional(),
    limit: pageLimit,
    before_id: optionalIdQuery().openapi({ type: 'integer' }),
  });

  const pageQuery = z.object({
    limit: pageLimit,
    offset: z.string().regex(/^\d{1,9}$/, 'must be a non-negative integer').transform(Number).optional().openapi({ type: 'integer', minimum: 0 }),
  });

  const workerPatch = z.object({ suspended: requiredFlexibleBoolean }).openapi('WorkerPatch');

  return { definitionWrite, definitionCreate, launch, idempotencyHeader, definitionListQuery, instanceListQuery, pageQuery, workerPatch, maxPageSize: limits.maxPageSize };
}

export type HttpSchemas = ReturnType<typeof buildSchemas>;

const time = z.string().openapi({ format: 'date-time', example: '2026-01-01T00:00:00.000Z' });
const nullableTime = time.nullable();

export const errorSchema = z
  .object({
    status_code: z.number().int(),
    error_code: z.enum([...new Set([...Object.values(ERROR_CODE), FALLBACK_ERROR_CODE])]),
    message: z.string(),
    errors: z
      .array(z.object({ field: z.string().optional(), message: z.string(), line: z.number().int().optional(), column: z.number().int().optional() }))
      .optional(),
  })
  .openapi('Error');

export const definitionSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    description: z.string(),
    script: z.string(),
    tags: z.array(z.string()),
    cron: z.array(z.string()),
    user_id: z.array(z.number().int()),
    notify_cancellation: z.boolean(),
    suspended: z.boolean(),
    prevent_multi: z.number().int().min(0).max(3),
    slack_channel: z.string(),
    api_allowed: z.boolean(),
    webhook_url: z.string().nullable(),
    hipchat_notify_finished: z.boolean(),
    time_zone: z.string(),
    suspend_cron: z.array(z.string()),
    catch_up_window_minutes: z.number().int(),
    retention_days: z.number().int().nullable(),
    created_at: time,
    updated_at: time,
  })
  .openapi('JobDefinition');

const instanceStatus = z.enum(['working', 'success', 'canceled', 'error']);

export const instanceSchema = z
  .object({
    id: z.number().int(),
    status: instanceStatus,
    job_definition_id: z.number().int(),
    created_at: time,
    finished_at: nullableTime,
    canceled_at: nullableTime,
    error_at: nullableTime,
    retrying: z.boolean(),
    launched_by: z.string(),
  })
  .openapi('JobInstance');

export const executionSchema = z
  .object({
    id: z.number().int(),
    token_id: z.number().int(),
    job_instance_id: z.number().int(),
    job_definition_id: z.number().int(),
    queue: z.string(),
    shell: z.string(),
    status: z.enum(['waiting', 'running', 'finished']),
    pid: z.number().int().nullable(),
    hostname: z.string().nullable(),
    worker_id: z.number().int().nullable(),
    created_at: nullableTime,
    claimed_at: nullableTime,
    started_at: nullableTime,
    finished_at: nullableTime,
    exit_status: z.number().int().nullable(),
    term_signal: z.string().nullable(),
  })
  .openapi('Execution');

export const instanceDetailSchema = instanceSchema
  .extend({
    tokens: z.array(
      z.object({
        id: z.number().int(),
        parent_id: z.number().int().nullable(),
        path: z.string(),
        status: z.enum(['working', 'finished', 'failure', 'waiting', 'critical']),
        message: z.string(),
      }),
    ),
    executions: z.array(executionSchema),
  })
  .openapi('JobInstanceDetail');

export const logSchema = z
  .object({ id: z.number().int(), level: z.enum(['INFO', 'WARN', 'ERROR']), message: z.string(), created_at: time })
  .openapi('InstanceLog');

export const workerSchema = z
  .object({
    id: z.number().int(),
    hostname: z.string(),
    queue: z.string().nullable().openapi({ description: 'the first queue (Kuroko2 workers served one)' }),
    queues: z.array(z.string()),
    slots: z.number().int(),
    status: z.enum(['working', 'idle', 'suspended', 'draining', 'lost']),
    suspended: z.boolean(),
    draining: z.boolean(),
    heartbeat_at: time,
    started_at: time,
    execution_id: z.number().int().nullable().openapi({ description: 'the first execution it holds' }),
    execution_ids: z.array(z.number().int()),
  })
  .openapi('Worker');

export const countsSchema = z.record(z.string(), z.number().int()).openapi('Counts');
export const healthSchema = z.object({ status: z.literal('ok') }).openapi('Health');
