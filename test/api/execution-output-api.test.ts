/** GET …/executions/{execution_id}/output: the agent-streamed output of one command, from the log sink. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LogReadOptions } from '../../adapters/logs/file-log-sink';
import { insertDefinition, servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { createHarness, type ApiHarness } from './api-fixtures';

describe('execution output API (data-api)', () => {
  let tdb: TestDatabase;
  let withOutputs: ApiHarness;
  let withoutOutputs: ApiHarness;
  const reads: { executionId: number; options: LogReadOptions | undefined }[] = [];
  let instanceId: number;
  let executionId: number;
  /** A real execution of another instance, of another definition. */
  let otherInstanceId: number;
  let otherExecutionId: number;

  beforeAll(async () => {
    tdb = await createTestDatabase('data-api');
    withOutputs = await createHarness(tdb, {
      outputs: {
        read: (id, options) => {
          reads.push({ executionId: id, options });
          return Promise.resolve(`output of ${id}\n`);
        },
      },
    });
    withoutOutputs = await createHarness(tdb);
    await insertDefinition(tdb.db, 1, 'execute: echo hello\n');
    await insertDefinition(tdb.db, 2, 'execute: echo other\n');
    const services = servicesFor(tdb);
    instanceId = (await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id;
    otherInstanceId = (await services.operations.launch({ definitionId: 2, launchedBy: 'test' })).instance.id;
    const executionOf = (instance: number) => tdb.db.selectFrom('executions').select('id').where('job_instance_id', '=', instance).executeTakeFirst();
    for (let pass = 0; pass < 5 && (!(await executionOf(instanceId)) || !(await executionOf(otherInstanceId))); pass++) await services.processorPass();
    executionId = Number((await executionOf(instanceId))!.id);
    otherExecutionId = Number((await executionOf(otherInstanceId))!.id);
  });
  afterAll(async () => {
    await tdb?.close();
  });
  beforeEach(() => {
    reads.length = 0;
  });

  const outputPath = (definitionId: number, instance: number, execution: number, query = '') =>
    `/v1/definitions/${definitionId}/instances/${instance}/executions/${execution}/output${query}`;

  it("answers the execution's output as text, passing the window through", async () => {
    const res = await withOutputs.call('GET', outputPath(1, instanceId, executionId, '?offset_bytes=5&max_bytes=10'), { as: 'read' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe(`output of ${executionId}\n`);
    expect(reads).toEqual([{ executionId, options: { offsetBytes: 5, maxBytes: 10 } }]);
  });

  it('404s an execution of another instance or an instance of another definition, without reading the sink', async () => {
    // The other instance's real execution under this instance, and this instance under the other (existing) definition.
    for (const path of [outputPath(1, instanceId, otherExecutionId), outputPath(2, instanceId, executionId), outputPath(1, otherInstanceId, otherExecutionId)]) {
      const res = await withOutputs.call('GET', path, { as: 'read' });
      expect(res.status, path).toBe(404);
    }
    expect(reads).toEqual([]);
  });

  it('404s at once without an output store: no statement beyond the client lookup', async () => {
    // A first request verifies the secret (scrypt, after the failed-login limit's check); later ones hit the cache.
    await withoutOutputs.call('GET', outputPath(1, instanceId, executionId), { as: 'read' });
    tdb.dataApi!.resetCounts();
    const res = await withoutOutputs.call('GET', outputPath(1, instanceId, executionId), { as: 'read' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ status_code: 404, error_code: 'record_not_found' });
    // The lookup of the API client behind the Basic credentials, and nothing else.
    expect(tdb.dataApi!.statementCount()).toBe(1);
  });
});
