/**
 * The operator CLI's side of the HTTP API: where it is (`--url` / KUROKO_URL), who asks (`--client` /
 * KUROKO_CLIENT as `name:secret`), a client generated from our own OpenAPI document (openapi-fetch over
 * cli/ops/api-types.ts), and one readable message for every API error body.
 */
import { trimBaseUrl } from '../../core/urls';
import createClient from 'openapi-fetch';
import type { components, paths } from './api-types';

export type ApiClient = ReturnType<typeof createClient<paths>>;
export type DefinitionResource = components['schemas']['JobDefinition'];
export type InstanceResource = components['schemas']['JobInstance'];
export type InstanceDetail = components['schemas']['JobInstanceDetail'];
export type LogLine = components['schemas']['InstanceLog'];
type ErrorBody = components['schemas']['Error'];

export interface Connection {
  url: string;
  clientName: string;
  client: ApiClient;
}

/** A failure the CLI reports as one message and exit status 1: an API error, an unreachable server, a bad answer. */
export class OpsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpsError';
  }
}

/** Bad arguments or configuration (exit status 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The connection from `--url`/`--client`, falling back to KUROKO_URL/KUROKO_CLIENT. */
export function connect(options: { url?: string | undefined; client?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Connection {
  const url = options.url ?? env.KUROKO_URL;
  const credentials = options.client ?? env.KUROKO_CLIENT;
  const problems: string[] = [];
  if (!url) problems.push('no API URL: give --url URL or set KUROKO_URL (e.g. http://127.0.0.1:3000)');
  else if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) problems.push(`--url ${url} is not an http(s) URL`);
  const colon = credentials?.indexOf(':') ?? -1;
  if (!credentials) problems.push('no API client: give --client NAME:SECRET or set KUROKO_CLIENT');
  else if (colon <= 0 || colon === credentials.length - 1) problems.push('--client / KUROKO_CLIENT must be NAME:SECRET');
  if (problems.length > 0 || !url || !credentials) throw new UsageError(problems.join('\n'));
  const baseUrl = trimBaseUrl(url);
  const client = createClient<paths>({
    baseUrl,
    headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}`, 'user-agent': 'kuroko-cli' },
  });
  return { url: baseUrl, clientName: credentials.slice(0, colon), client };
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && 'status_code' in value && 'message' in value;
}

/** Where a script's line and column are in the file it came from (`FILE:LINE:COLUMN`). */
export type ScriptPlace = (line: number, column: number) => string;

/**
 * One message for an API error: `STATUS error_code: message`, then one line per listed problem with its field and,
 * for a script, its line and column (`script:3:5: ...`).
 */
export function describeApiError(status: number, body: unknown, what: string, scriptAt?: ScriptPlace): string {
  if (!isErrorBody(body)) {
    const text = typeof body === 'string' && body.trim() !== '' ? `: ${body.trim().slice(0, 200)}` : '';
    return `${what}: HTTP ${status}${text}`;
  }
  const lines = [`${what}: ${body.status_code} ${body.error_code}: ${body.message}`];
  for (const item of body.errors ?? []) {
    const inScript = scriptAt && item.field === 'script' && item.line !== undefined;
    const place = inScript ? scriptAt(item.line as number, item.column ?? 1) : [item.field, item.line, item.column].filter((p) => p !== undefined).join(':');
    lines.push(`  ${place ? `${place}: ` : ''}${item.message}`);
  }
  if (body.status_code === 401) lines.push('  (check --client / KUROKO_CLIENT)');
  if (body.status_code === 403) lines.push("  (the API client's scope does not allow it)");
  return lines.join('\n');
}

/** Awaits a request, turning a network failure into an OpsError that says the API could not be reached. */
async function reach<R>(what: string, request: Promise<R>): Promise<R> {
  try {
    return await request;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    throw new OpsError(`${what}: cannot reach the API (${error instanceof Error ? error.message : String(error)}${cause})`);
  }
}

/**
 * Awaits an openapi-fetch call and returns its data, or throws an OpsError saying what failed: the API's error
 * body, or why the server could not be reached.
 */
export async function call<T>(what: string, request: Promise<{ data?: T; error?: unknown; response: Response }>, scriptAt?: ScriptPlace): Promise<T> {
  const result = await reach(what, request);
  if (!result.response.ok) throw new OpsError(describeApiError(result.response.status, result.error, what, scriptAt));
  return result.data as T;
}

/** Every definition, ordered by id (the API returns them all). */
export async function listDefinitions(conn: Connection): Promise<DefinitionResource[]> {
  return call('listing definitions', conn.client.GET('/v1/definitions'));
}

/** A definition by id (digits) or by exact name. */
export async function resolveDefinition(conn: Connection, ref: string): Promise<DefinitionResource> {
  if (/^[1-9]\d{0,15}$/.test(ref)) {
    const { data, error, response } = await reach(`reading definition ${ref}`, conn.client.GET('/v1/definitions/{id}', { params: { path: { id: Number(ref) } } }));
    if (data) return data;
    // Digits that are no id may still be a name.
    if (response.status !== 404) throw new OpsError(describeApiError(response.status, error, `reading definition ${ref}`));
  }
  const found = (await listDefinitions(conn)).filter((d) => d.name === ref);
  if (found.length === 0) throw new OpsError(`no job definition named or numbered ${ref}`);
  return found[0] as DefinitionResource;
}

/**
 * An instance by id. The API addresses an instance under its definition: with `job` that one is asked, otherwise
 * every definition is, newest first, until one has it.
 */
export async function findInstance(conn: Connection, instanceRef: string, job: string | undefined): Promise<InstanceDetail> {
  if (!/^[1-9]\d{0,15}$/.test(instanceRef)) throw new UsageError(`INSTANCE must be an instance id, not ${instanceRef}`);
  const instanceId = Number(instanceRef);
  const candidates = job !== undefined ? [await resolveDefinition(conn, job)] : (await listDefinitions(conn)).reverse();
  for (const definition of candidates) {
    const { data, error, response } = await reach(
      `reading instance ${instanceId}`,
      conn.client.GET('/v1/definitions/{id}/instances/{instance_id}', { params: { path: { id: definition.id, instance_id: instanceId } } }),
    );
    if (data) return data;
    if (response.status !== 404) throw new OpsError(describeApiError(response.status, error, `reading instance ${instanceId}`));
  }
  throw new OpsError(`no job instance ${instanceId}${job !== undefined ? ` of ${job}` : ''}`);
}

export async function getInstance(conn: Connection, definitionId: number, instanceId: number): Promise<InstanceDetail> {
  return call(
    `reading instance ${instanceId}`,
    conn.client.GET('/v1/definitions/{id}/instances/{instance_id}', { params: { path: { id: definitionId, instance_id: instanceId } } }),
  );
}

/** Log lines of an instance from `offset` on (oldest first). */
export async function readLogs(conn: Connection, definitionId: number, instanceId: number, offset: number): Promise<LogLine[]> {
  return call(
    `reading the log of instance ${instanceId}`,
    conn.client.GET('/v1/definitions/{id}/instances/{instance_id}/logs', {
      params: { path: { id: definitionId, instance_id: instanceId }, query: { offset } },
    }),
  );
}

export function formatLogLine(line: LogLine): string {
  return `${line.created_at} ${line.level.padEnd(5)} ${line.message}\n`;
}
