/**
 * Issue 13, finding 5: three nested `parallel_fork: 100` passed `kuroko validate` and would make a million tokens.
 * The validator refuses it at its line; the engine refuses what the validator never saw (a script written before
 * the budget, or a sub_process chain whose instances are each small).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateScript } from '../../core/dsl/script-validator';
import { MAX_TOKENS_PER_LAUNCH, countScriptTokens } from '../../core/dsl/token-budget';
import { parseScript } from '../../core/dsl/script-parser';
import type { EngineServices } from '../../app/engine-services';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const NESTED = 'parallel_fork: 100\n  parallel_fork: 100\n    parallel_fork: 100\n      noop:\n';

describe('token budget: validator', () => {
  it('refuses three nested parallel_fork: 100 with a located error', () => {
    const problems = validateScript(NESTED);
    expect(problems).toEqual([expect.objectContaining({ line: 1, column: 1, message: expect.stringContaining(`more than ${MAX_TOKENS_PER_LAUNCH} tokens`) })]);
  });

  it('counts nesting multiplied out and sequential forks added up', () => {
    const count = (s: string) => {
      const parsed = parseScript(s);
      if (!parsed.ok) throw new Error('bad script');
      return countScriptTokens(parsed.root);
    };
    expect(count('parallel_fork: 10\n  parallel_fork: 10\n    noop:\n')).toBe(1 + 10 * (1 + 10));
    expect(count('fork:\n  noop:\n  noop:\nparallel_fork: 3\n  noop:\n')).toBe(1 + 2 + 3);
    expect(validateScript('parallel_fork: 30\n  parallel_fork: 30\n    noop:\n')).toEqual([]);
    const sequential = validateScript('sequence:\n  parallel_fork: 100\n    parallel_fork: 5\n      noop:\n  parallel_fork: 100\n    parallel_fork: 5\n      noop:\n');
    expect(sequential).toEqual([expect.objectContaining({ line: 5, column: 3 })]);
  });
});

describe('token budget: engine at run time (sqlite)', () => {
  let tdb: TestDatabase;
  let services: EngineServices;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    const { servicesFor } = await import('../helpers/engine-fixtures');
    services = servicesFor(tdb);
  });
  afterEach(async () => {
    await tdb.close();
  });

  const passes = async (n: number) => {
    for (let i = 0; i < n; i++) await services.processorPass();
  };

  it('stops a stored script that nests past the budget before it makes the tokens', async () => {
    // Written straight into the table, as a definition saved before the budget existed would be.
    await insertDefinition(tdb.db, 20, NESTED);
    const { instance } = await services.operations.launch({ definitionId: 20, launchedBy: 'test' });
    await passes(6);
    const tokens = await tdb.db.selectFrom('tokens').select('id').execute();
    const logs = await tdb.db.selectFrom('instance_logs').select('message').where('job_instance_id', '=', instance.id).execute();
    expect(logs.map((l) => l.message).join('\n')).toContain(`more than ${MAX_TOKENS_PER_LAUNCH} tokens at once`);
    const row = await tdb.db.selectFrom('job_instances').select('canceled_at').where('id', '=', instance.id).executeTakeFirstOrThrow();
    expect(row.canceled_at).not.toBeNull();
    expect(tokens.length).toBeLessThanOrEqual(101);
  });

  it('multiplies a sub_process chain: 100 branches each launching a 100-branch definition are refused', async () => {
    await insertDefinition(tdb.db, 31, 'parallel_fork: 100\n  noop:\n');
    await insertDefinition(tdb.db, 30, 'parallel_fork: 100\n  sub_process: 31\n');
    const { instance } = await services.operations.launch({ definitionId: 30, launchedBy: 'test' });
    await passes(8);
    const launched = await tdb.db.selectFrom('job_instances').select('id').where('job_definition_id', '=', 31).execute();
    expect(launched).toEqual([]);
    const logs = await tdb.db.selectFrom('instance_logs').select('message').where('job_instance_id', '=', instance.id).execute();
    expect(logs.map((l) => l.message).join('\n')).toContain('100 copies of');
  });

  it('stops a definition that launches itself as a sub process', async () => {
    await insertDefinition(tdb.db, 40, 'sub_process: 40\n');
    await services.operations.launch({ definitionId: 40, launchedBy: 'test' });
    await passes(40);
    const instances = await tdb.db.selectFrom('job_instances').select('id').where('job_definition_id', '=', 40).execute();
    expect(instances.length).toBeLessThanOrEqual(11);
    const logs = await tdb.db.selectFrom('instance_logs').select('message').execute();
    expect(logs.map((l) => l.message).join('\n')).toContain('deeper than 10 levels');
  });
});
