/**
 * Issue 13, findings 1, 2 and the ids of 6: what a launch-scope API client could do before. Each test replays the
 * probe over the real HTTP app and a real SQLite database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateScript } from '../../core/dsl/script-validator';
import { createHarness, snapshot, type ApiHarness } from '../api/api-fixtures';
import { insertDefinition } from '../helpers/engine-fixtures';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('API launches: no client climbs past its scope (sqlite)', () => {
  let tdb: TestDatabase;
  let h: ApiHarness;
  beforeEach(async () => {
    tdb = await createTestDatabase('sqlite');
    h = await createHarness(tdb);
  });
  afterEach(async () => {
    await tdb.close();
  });

  const launch = (id: number | string, body: unknown, as: 'launch' | 'admin' | 'read' = 'launch') => h.call('POST', `/v1/definitions/${id}/instances`, { as, body });

  it('refuses an ad-hoc script from a launch client with 403 (the probe read the admin secret with `cat`), and runs it for admin', async () => {
    await insertDefinition(tdb.db, 10, 'noop:\n', { apiAllowed: true });
    const before = await snapshot(tdb);
    const res = await launch(10, { script: 'execute: cat credentials.json; cat console-secret\n' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toContain('an ad-hoc script needs admin');
    expect(await snapshot(tdb)).toEqual(before);
    expect((await launch(10, { script: 'noop:\n' }, 'admin')).status).toBe(201);
  });

  it('refuses an ad-hoc sub_process: of a definition without api_allowed, even for admin', async () => {
    await insertDefinition(tdb.db, 10, 'noop:\n', { apiAllowed: true });
    await insertDefinition(tdb.db, 11, 'execute: private-work\n', { apiAllowed: false, name: 'private' });
    const before = await snapshot(tdb);
    const res = await launch(10, { script: 'sub_process: 11\n' }, 'admin');
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toContain('sub_process: 11 (private) is not allowed to be executed via API');
    expect(await snapshot(tdb)).toEqual(before);
  });

  it('refuses env names that change how bash or the loader starts, with 422 naming them, and NUL in values', async () => {
    await insertDefinition(tdb.db, 10, 'execute: true\n', { apiAllowed: true });
    const before = await snapshot(tdb);
    for (const name of ['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'IFS', 'CDPATH', 'GLOBIGNORE', 'PROMPT_COMMAND', 'BASH_FUNC_ls', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'NODE_OPTIONS', 'PYTHONSTARTUP', 'PERL5OPT', 'RUBYOPT']) {
      const res = await launch(10, { env: { [name]: '$(id >&2)' } });
      expect(res.status, name).toBe(422);
      const body = (await res.json()) as { error_code: string; message: string };
      expect(body.error_code).toBe('unprocessable_entity');
      expect(body.message).toContain(name);
    }
    const nul = await launch(10, { env: { GREETING: 'a\u0000b' } });
    expect(nul.status).toBe(422);
    expect(((await nul.json()) as { message: string }).message).toContain('GREETING holds a NUL');
    expect(await snapshot(tdb)).toEqual(before);
    expect((await launch(10, { env: { PATH_EXTRA: '/opt/bin', MY_ENV: 'x', LANG: 'C' } })).status).toBe(201);
  });

  it('refuses ids past 2^53 with 400 instead of rounding them onto another record', async () => {
    for (const path of ['/v1/definitions/9007199254740993', '/v1/definitions/1/instances/9007199254740993', '/v1/definitions?after_id=9007199254740993']) {
      const res = await h.call('GET', path, { as: 'read' });
      expect(res.status, path).toBe(400);
    }
    expect((await h.call('GET', '/v1/definitions/9007199254740991', { as: 'read' })).status).toBe(404);
  });
});

describe('env: in scripts', () => {
  it('refuses the same names in an env: node, located at the name', () => {
    expect(validateScript('noop:\nenv: GREETING=hi BASH_ENV=$(id)\nexecute: true\n')).toEqual([
      { line: 2, column: 18, message: 'env: BASH_ENV may not be set: it changes how the shell or the loader starts' },
    ]);
    expect(validateScript('env: LD_PRELOAD=/tmp/x.so\nexecute: true\n')).toHaveLength(1);
    expect(validateScript('env: GREETING=hi\nexecute: true\n')).toEqual([]);
  });
});
