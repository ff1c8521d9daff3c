/**
 * The OpenAPI document serves third-party generators: Redocly's linter (its recommended rules) finds no error in
 * the document `GET /v1/openapi.json` serves, openapi-typescript generates the checked-in client types from it
 * unchanged, and the points that broke generated clients stay fixed, each checked against what the server does.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE } from '../../http/http-errors';
import { API_TYPES_FILE, generateApiTypes } from '../../scripts/gen-api-types';
import { servedOpenApiDocument } from '../../scripts/openapi-document';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { createHarness, type ApiHarness } from './api-fixtures';

const run = promisify(execFile);
const REDOCLY = join(import.meta.dirname, '..', '..', 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface Operation {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, { headers?: Record<string, unknown> }>;
}
interface Document {
  servers?: { url: string }[];
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { schemas: Record<string, { allOf?: unknown; required?: string[]; properties?: Record<string, Record<string, unknown>> }> };
}

function operations(doc: Document): { where: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.flatMap((m) => (item[m] ? [{ where: `${m.toUpperCase()} ${path}`, op: item[m] }] : [])),
  );
}

describe('the served OpenAPI document', () => {
  let doc: Document;
  let dir: string;
  beforeAll(async () => {
    doc = (await servedOpenApiDocument()) as unknown as Document;
    dir = await mkdtemp(join(tmpdir(), 'kuroko-openapi-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes Redocly's recommended lint rules with no error (one known warning: health has no 4xx to declare)", async () => {
    const file = join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(doc, null, 2));
    // Telemetry and the update check off: the linter runs offline.
    const { stdout } = await run(process.execPath, [REDOCLY, 'lint', file, '--format=json', '--extends=recommended'], {
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? '' }));
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`);
    expect(problems.filter((p) => p.startsWith('error'))).toEqual([]);
    expect(report.totals.errors).toBe(0);
    // /v1/health needs no credentials and has no input: nothing it answers is a 4xx.
    expect(problems).toEqual(['warn operation-4xx-response #/paths/~1v1~1health/get/responses: Operation must have at least one `4XX` response.']);
  });

  it('generates the checked-in client types unchanged (npm run gen:api-types)', async () => {
    const checkedIn = await readFile(API_TYPES_FILE, 'utf8');
    expect(await generateApiTypes(), 'cli/ops/api-types.ts is stale: run npm run gen:api-types').toBe(checkedIn);
  });

  it('names every operation once, has a server, and declares WWW-Authenticate on every 401', () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThan(15);
    const ids = ops.map(({ where, op }) => op.operationId ?? `missing on ${where}`);
    expect(ids.filter((id) => id.startsWith('missing'))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.servers?.length).toBeGreaterThan(0);
    for (const { where, op } of ops) {
      if (where === 'GET /v1/health') {
        expect(op.security).toEqual([]);
        continue;
      }
      expect(op.responses['401'], where).toBeDefined();
      expect(Object.keys(op.responses['401']?.headers ?? {}), where).toEqual(['WWW-Authenticate']);
    }
  });

  it('documents the create body as one object with name and script required, and the input bounds', () => {
    const schemas = doc.components.schemas;
    const create = schemas.JobDefinitionCreate;
    expect(create?.allOf).toBeUndefined();
    expect(create?.required).toEqual(expect.arrayContaining(['name', 'script']));
    for (const name of ['JobDefinitionCreate', 'JobDefinitionInput']) {
      expect(schemas[name]?.properties?.prevent_multi).toMatchObject({ type: 'integer', minimum: 0, maximum: 3 });
    }
    expect(schemas.WorkerPatch?.required).toEqual(['suspended']);
    expect(new Set(schemas.Error?.properties?.error_code?.enum as string[])).toEqual(new Set([...Object.values(ERROR_CODE), 'error']));
  });
});

describe('the server does what the document says', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
    await insertDefinition(tdb.db, 1, 'noop:\n');
  });
  afterAll(async () => {
    await tdb.close();
  });

  it('GET /v1/openapi.json without credentials is the declared 401 with WWW-Authenticate', async () => {
    const res = await h.call('GET', '/v1/openapi.json', { as: null });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(await res.json()).toMatchObject({ status_code: 401, error_code: 'unauthorized' });
  });

  it('requires suspended on PATCH /v1/workers/{id} (422 when missing), and bounds prevent_multi to 0..3', async () => {
    const missing = await h.call('PATCH', '/v1/workers/1', { body: {} });
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ error_code: 'unprocessable_entity', message: 'suspended: is required' });
    for (const bad of [-1, 4]) {
      const res = await h.call('PUT', '/v1/definitions/1', { body: { prevent_multi: bad } });
      expect(res.status).toBe(422);
    }
    expect((await h.call('PUT', '/v1/definitions/1', { body: { prevent_multi: 3 } })).status).toBe(204);
  });
});
