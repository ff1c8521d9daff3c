import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors';
import { migrationNames } from '../../db/migrator';
import type * as MigratorModule from '../../functions/migrator/handler';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { applyEnv, customResourceEvent, functionEnv, lambdaContext } from './function-fixtures';

let tdb: TestDatabase;
let migrator: typeof MigratorModule;
const context = () => lambdaContext('kuroko-test-migrator', () => 300_000);

beforeAll(async () => {
  tdb = await createTestDatabase('data-api', { migrate: false });
  applyEnv(functionEnv(tdb));
  migrator = await import('../../functions/migrator/handler');
});
afterAll(async () => {
  await migrator?.runtime.close();
  await tdb?.close();
});

const tables = async () => (await tdb.db.introspection.getTables()).map((t) => t.name);

describe('migrator handler (CDK Provider onEvent)', () => {
  it('migrates on Create, and a second Create and an Update find nothing left to do', async () => {
    expect(await tables()).not.toContain('tokens');
    const latest = migrationNames().at(-1);

    const first = await migrator.handler(customResourceEvent('Create'), context());
    expect(first.PhysicalResourceId).toMatch(/^kuroko-migrations-kuroko_test_/);
    expect(first.Data).toEqual({ Applied: migrationNames().length, Latest: latest });
    expect(await tables()).toEqual(expect.arrayContaining(['tokens', 'executions', 'workers']));

    const second = await migrator.handler(customResourceEvent('Create'), context());
    expect(second).toEqual({ PhysicalResourceId: first.PhysicalResourceId, Data: { Applied: 0, Latest: latest } });

    const update = await migrator.handler(customResourceEvent('Update', first.PhysicalResourceId), context());
    expect(update).toEqual({ PhysicalResourceId: first.PhysicalResourceId, Data: { Applied: 0, Latest: latest } });
  });

  it('keeps the database on Delete and answers with the same physical id', async () => {
    const result = await migrator.handler(customResourceEvent('Delete', 'kuroko-migrations-x'), context());
    expect(result).toEqual({ PhysicalResourceId: 'kuroko-migrations-x' });
    expect(await tables()).toContain('tokens');
  });

  it('throws on an event that is not a custom resource request (the Provider reports FAILED)', async () => {
    await expect(migrator.handler({ RequestType: 'Replace' }, context())).rejects.toBeInstanceOf(ValidationError);
  });
});
