/** Builds the HTTP app over a test database with one API client per scope, and small request helpers. */
import { createHttpApp } from '../../http/http-app';
import type { HttpAppDeps } from '../../http/http-app';
import type { HttpLogger } from '../../http/http-errors';
import { ensureApiClients } from '../../http/api/http-auth';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import type { App } from '../../http/api/http-routes';
import type { EngineServices } from '../../app/engine-services';
import { servicesFor } from '../helpers/engine-fixtures';
import type { TestDatabase } from '../helpers/test-database';

export const CLIENTS = {
  admin: { name: 'ops-admin', secret: 'admin-secret-00001' },
  launch: { name: 'batch-launcher', secret: 'launch-secret-0001' },
  read: { name: 'dashboard', secret: 'read-secret-000001' },
} as const;

export type ClientName = keyof typeof CLIENTS;

/** Collects log calls so tests can assert what was (and was not) logged. */
export function recordingLogger(): HttpLogger & { lines: { level: string; message: string; extra?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; extra?: Record<string, unknown> }[] = [];
  const push = (level: string) => (message: string, extra?: Record<string, unknown>) => void lines.push({ level, message, ...(extra ? { extra } : {}) });
  return { lines, info: push('INFO'), warn: push('WARN'), error: push('ERROR') };
}

export interface ApiHarness {
  app: App;
  services: EngineServices;
  logger: ReturnType<typeof recordingLogger>;
  launches: { count: number };
  /** Sends a request as the given client (no credentials when `as` is null). */
  call(method: string, path: string, options?: { as?: ClientName | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<Response>;
}

export function basicAuth(name: string, secret: string): string {
  return `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
}

/** The app over `tdb`, with the three clients created through ensureApiClients. */
export async function createHarness(tdb: TestDatabase, deps: Partial<HttpAppDeps> = {}): Promise<ApiHarness> {
  const services = deps.services ?? servicesFor(tdb);
  const logger = recordingLogger();
  const launches = { count: 0 };
  const clients = new ApiClientRepository(tdb.db, services.ids, services.clock);
  await ensureApiClients(
    clients,
    `${CLIENTS.admin.name}:${CLIENTS.admin.secret},${CLIENTS.launch.name}:${CLIENTS.launch.secret}:launch,${CLIENTS.read.name}:${CLIENTS.read.secret}:read`,
  );
  // The failed-login limit has its own tests (test/security/login-limit.test.ts); here it must not get in the way of
  // tests that try many wrong secrets and then the right one.
  const loginLimits = { perClient: { maxFailures: 10_000, windowMs: 60_000 }, perAddress: { maxFailures: 10_000, windowMs: 60_000 } };
  const app = createHttpApp({ services, logger, onLaunch: () => void launches.count++, loginLimits, ...deps });
  return {
    app,
    services,
    logger,
    launches,
    call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const as = options.as === undefined ? 'admin' : options.as;
      if (as !== null) headers.authorization = basicAuth(CLIENTS[as].name, CLIENTS[as].secret);
      let body: string | undefined;
      if (options.rawBody !== undefined) body = options.rawBody;
      else if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      return Promise.resolve(app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }));
    },
  };
}

/** Row counts of every table a write endpoint touches, to prove a rejected request changed nothing. */
export async function snapshot(tdb: TestDatabase): Promise<Record<string, unknown>> {
  const tables = [
    'job_definitions',
    'tags',
    'job_definition_tags',
    'script_revisions',
    'job_schedules',
    'job_suspend_schedules',
    'job_instances',
    'tokens',
    'executions',
    'instance_logs',
    'events',
    'workers',
    'process_signals',
  ] as const;
  const out: Record<string, unknown> = {};
  for (const table of tables) {
    const rows = await tdb.db.selectFrom(table).selectAll().execute();
    out[table] = rows
      .map((r) => JSON.stringify(r))
      .sort();
  }
  return out;
}
