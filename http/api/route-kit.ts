/**
 * What every v1 sub-app shares: the app's type, the services its handlers call, the OpenAPI pieces each route
 * declares (security, error answers, JSON bodies) and the response check. Each resource's routes live in their own
 * sub-app (definition-routes.ts, instance-routes.ts, ...); http-routes.ts mounts them under `/v1`.
 */
import { OpenAPIHono, type z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { NotFoundError } from '../../core/errors';
import type { InstanceOperations } from '../../core/services/instance-operations';
import type { ApiScope } from '../../db/repositories/api-client-repository';
import type { LogSink } from '../../adapters/logs/file-log-sink';
import type { DefinitionRepository } from '../../db/repositories/definition-repository';
import type { QueryRepository } from '../../db/repositories/query-repository';
import { requireScope } from './http-auth';
import type { AuthenticatedClient } from './http-auth';
import { HTTP_STATUS } from '../http-errors';
import { errorSchema } from './http-schemas';
import type { HttpSchemas } from './http-schemas';

export type AppEnv = { Variables: { client: AuthenticatedClient } };
export type App = OpenAPIHono<AppEnv>;

/** What the handlers call. */
export interface RouteServices {
  definitions: DefinitionRepository;
  queries: QueryRepository;
  operations: InstanceOperations;
  schemas: HttpSchemas;
  declaredQueues: readonly string[];
  /** Nudges the processor after a launch, retry or skip (the local mode runs a pass; AWS invokes the function). */
  onLaunch: () => void;
  /** Where agents stream each command's whole output (files locally, CloudWatch Logs in AWS), if readable here. */
  outputs: Pick<LogSink, 'read'> | undefined;
}

/** A sub-app to mount on `parent`: it answers a failed request validation the way `parent` does. */
export const subAppOf = (parent: App): App => new OpenAPIHono<AppEnv>({ defaultHook: parent.defaultHook });

export const JSON_TYPE = 'application/json';
export const SECURITY_SCHEME = 'basicAuth';
export const secured = [{ [SECURITY_SCHEME]: [] }];

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'malformed JSON or a value of the wrong type (bad_request)',
  401: 'missing or wrong credentials (unauthorized)',
  403: 'the client scope or the definition does not allow it (forbidden)',
  404: 'no such record (record_not_found)',
  409: 'the current state does not allow it (conflict)',
  413: 'the body is too large',
  415: 'the body is not application/json',
  422: 'well-formed but invalid (unprocessable_entity)',
  429: 'too many failed logins for this client name or address; see Retry-After (too_many_requests)',
  503: 'the database is resuming or unreachable; try again after Retry-After seconds (service_unavailable)',
};

/** The header every 401 carries (the contract: `WWW-Authenticate: Basic`). */
const UNAUTHORIZED_HEADERS = {
  'WWW-Authenticate': { description: 'the scheme to authenticate with: `Basic realm="..."`', schema: { type: 'string' as const } },
};

/** The header every 429 and 503 carries: the seconds to wait before trying again. */
const RETRY_AFTER_HEADERS = {
  'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'string' as const } },
};

/** The error answers of a route: 401 and 403 always, then the given statuses. */
export function errors(...statuses: number[]) {
  const out: Record<number, { description: string; headers?: typeof UNAUTHORIZED_HEADERS | typeof RETRY_AFTER_HEADERS; content: { [JSON_TYPE]: { schema: typeof errorSchema } } }> = {};
  // Every authenticated route can answer 429 (http/login-limiter.ts) before its own checks run, and 503
  // while the database resumes or is unreachable (http-errors.ts).
  for (const status of [401, 403, 429, ...statuses, 503]) {
    out[status] = {
      description: ERROR_DESCRIPTIONS[status] ?? 'error',
      ...(status === HTTP_STATUS.unauthorized ? { headers: UNAUTHORIZED_HEADERS } : {}),
      ...(status === 429 || status === 503 ? { headers: RETRY_AFTER_HEADERS } : {}),
      content: { [JSON_TYPE]: { schema: errorSchema } },
    };
  }
  return out;
}

export const jsonOf = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: { [JSON_TYPE]: { schema } } });
export const bodyOf = <S extends z.ZodType>(schema: S, required: boolean) => ({ required, content: { [JSON_TYPE]: { schema } } });
export const scoped = (scope: ApiScope) => requireScope(scope);

/** Validates a response against its schema, so a field the contract promises can never silently go missing. */
export function reply<S extends z.ZodType, Status extends ContentfulStatusCode>(c: Context, schema: S, body: z.input<S>, status: Status) {
  return c.json(schema.parse(body) as z.output<S>, status);
}

export const launchedBy = (client: AuthenticatedClient) => `instances API (${client.name})`;

/** The instance of the path, or a 404 when it does not exist or belongs to another definition. */
export async function instanceOf(queries: QueryRepository, definitionId: number, instanceId: number) {
  const instance = await queries.findInstance(instanceId);
  // Kuroko2 ignored the definition id of the path; a mismatch is a 404 here so a typo cannot act on another job.
  if (!instance || instance.definitionId !== definitionId) throw new NotFoundError('job instance', instanceId);
  return instance;
}
