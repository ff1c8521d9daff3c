/**
 * The local mode's daily retention loop, with the real `kuroko dev` process: it runs once at start, deletes a
 * finished instance older than KUROKO_RETENTION_DAYS with its command log file, and keeps a recent one.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';
import { dataDirPaths } from '../../cli/runtime/kuroko-runtime';
import { startLocalMode, type LocalModeProcess } from '../helpers/local-mode-process';
import { waitFor } from '../helpers/wait-for';

const DAY = 86_400_000;
const OLD = 900_001;
const RECENT = 900_101;

describe('local mode retention loop', () => {
  let dev: LocalModeProcess | undefined;
  afterAll(async () => {
    await dev?.stop();
    dev?.cleanup();
  });

  it('deletes old finished instances and their log files at start, keeps recent ones', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kuroko-retention-dev-'));
    const paths = dataDirPaths(dataDir);
    mkdirSync(paths.logDir, { recursive: true, mode: 0o700 });
    const handle = createDatabase(`sqlite:${paths.databaseFile}`);
    await migrateToLatest(handle.db);
    for (const [id, age] of [[OLD, 40], [RECENT, 5]] as const) {
      const at = new Date(Date.now() - age * DAY);
      await handle.db
        .insertInto('job_instances')
        .values({ id, job_definition_id: 12_345, script: 'noop:', launched_by: 'test', retrying: false, env: '{}', idempotency_key: null, idempotency_fingerprint: null, created_at: at, finished_at: at, canceled_at: null, error_at: null })
        .execute();
      await handle.db
        .insertInto('execution_histories')
        .values({ id: id + 1, execution_id: id + 2, job_instance_id: id, job_definition_id: 12_345, token_id: id + 3, queue: '@default', shell: 'true', hostname: null, worker_id: null, pid: null, started_at: at, finished_at: at, exit_status: 0, term_signal: null })
        .execute();
      writeFileSync(join(paths.logDir, `${id + 2}.log`), 'output\n', { mode: 0o600 });
    }
    await handle.close();

    dev = await startLocalMode({ dataDir, env: { KUROKO_RETENTION_DAYS: '30', KUROKO_AGENTS: '0' } });
    const oldLog = join(paths.logDir, `${OLD + 2}.log`);
    const reader = createDatabase(`sqlite:${paths.databaseFile}`);
    try {
      const instanceIds = async () => (await reader.db.selectFrom('job_instances').select('id').orderBy('id').execute()).map((r) => Number(r.id));
      await waitFor(async () => !existsSync(oldLog) && !(await instanceIds()).includes(OLD), { description: 'the old instance and its log file deleted' });
      expect(await instanceIds()).toEqual([RECENT]);
      expect((await reader.db.selectFrom('execution_histories').select('job_instance_id').execute()).map((r) => Number(r.job_instance_id))).toEqual([RECENT]);
      expect(existsSync(join(paths.logDir, `${RECENT + 2}.log`))).toBe(true);
    } finally {
      await reader.close();
    }
  });
});
