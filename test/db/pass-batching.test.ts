/**
 * Issue 18: a processor pass that ends many instances wakes their waiters (sub process parents, `wait:` tokens)
 * with one pair of statements per batch, not a pair per instance, and the waiters still wake.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { INSTANCE_STATUS } from '../../core/model';
import { createEngineServices } from '../../app/engine-services';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { insertDefinition, runUntilIdle, statusOf } from '../helpers/engine-fixtures';
import { describeEachDialect, createTestDatabase, type TestDatabase } from '../helpers/test-database';

const JOBS = 30;

describeEachDialect('processor pass batching', (dialect) => {
  let tdb: TestDatabase;
  let counted: DatabaseHandle;
  const wakeStatements: string[] = [];
  beforeAll(async () => {
    tdb = await createTestDatabase(dialect);
    counted = createDatabase(tdb.url, {
      log: (event) => {
        const text = event.query.sql;
        if (/^update .tokens. set .wake_at. = \?, .version. = .version. \+ \?/.test(text)) wakeStatements.push(text);
      },
    });
  });
  afterAll(async () => {
    await counted?.close();
    await tdb?.close();
  });

  it(`wakes the waiters of ${JOBS} ended instances with one pair of statements per batch, and a sub process parent still wakes`, async () => {
    await insertDefinition(tdb.db, 1, 'noop:\n');
    await insertDefinition(tdb.db, 2, 'sub_process: 1\n');
    const services = createEngineServices(counted, { ids: tdb.idGenerator });
    const parent = (await services.operations.launch({ definitionId: 2, launchedBy: 'test' })).instance.id;
    const jobs = [];
    for (let i = 0; i < JOBS; i++) jobs.push((await services.operations.launch({ definitionId: 1, launchedBy: 'test' })).instance.id);
    const passes = await runUntilIdle(services);
    for (const id of [parent, ...jobs]) expect(await statusOf(tdb.db, id)).toBe(INSTANCE_STATUS.success);
    // One pair per batch that ended something, at most one batch per pass here; a pair per instance was 62.
    expect(wakeStatements.length).toBeLessThanOrEqual(2 * passes);
    expect(wakeStatements.length).toBeLessThan(JOBS);
  });
});
