/**
 * Custom tasks (core/dsl/custom-tasks.ts), Kuroko2's `custom_tasks:` as configuration: the mapping's checks, the
 * parser and validator accepting a configured name (checked like `execute:`), the engine running its command over
 * SQLite, the console's script view showing that command, and the environment variables that configure it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runValidate } from '../../cli/validate-command';
import { customTaskShell, parseCustomTasks } from '../../core/dsl/custom-tasks';
import { validateScript } from '../../core/dsl/script-validator';
import { ConfigError } from '../../core/errors';
import { renderScript } from '../../http/console/script-view';
import { customTasksFromJson, loadCustomTasks } from '../../app/config/custom-tasks-config';
import { insertDefinition, logMessages, runUntilIdle, servicesFor, statusOf } from '../helpers/engine-fixtures';
import { createTestDatabase } from '../helpers/test-database';
import type { TestDatabase } from '../helpers/test-database';

const TASKS = customTasksFromJson(JSON.stringify({ my_project_runner: 'cd /srv/app && bin/rails runner {{option}}', deploy: 'bin/deploy --env' }), 'test');

describe('custom task configuration', () => {
  it('refuses bad names, built-in names, blank commands and non-objects', () => {
    const result = parseCustomTasks({ 'Bad-Name': 'x', execute: 'x', kuroko_runner: 'x', blank: '  ', nocommand: { other: 1 }, ok: { command: 'bin/ok' } });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      expect.stringContaining('custom task `Bad-Name`: a name is lower-case letters'),
      'custom task `execute`: the name is a built-in task type',
      'custom task `kuroko_runner`: the name is a built-in task type',
      'custom task `blank`: needs a command template (a non-blank string)',
      'custom task `nocommand`: needs a command template (a non-blank string)',
    ]);
    expect(parseCustomTasks(['x']).ok).toBe(false);
    expect(parseCustomTasks({ ok: { command: 'bin/ok' } })).toEqual({ ok: true, tasks: new Map([['ok', { name: 'ok', command: 'bin/ok' }]]) });
  });

  it('quotes the option as one shell word, in place of {{option}} or appended', () => {
    expect(customTaskShell(TASKS.get('my_project_runner')!, "MyProject::Batch1.run 'x'; rm -rf /")).toBe(
      `cd /srv/app && bin/rails runner 'MyProject::Batch1.run '\\''x'\\''; rm -rf /'`,
    );
    expect(customTaskShell(TASKS.get('deploy')!, 'staging')).toBe("bin/deploy --env 'staging'");
  });

  it('reads KUROKO_CUSTOM_TASKS or KUROKO_CUSTOM_TASKS_FILE, not both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-custom-'));
    try {
      const file = join(dir, 'tasks.json');
      writeFileSync(file, JSON.stringify({ runner: 'bin/run' }));
      expect([...loadCustomTasks({ KUROKO_CUSTOM_TASKS_FILE: file }).keys()]).toEqual(['runner']);
      expect([...loadCustomTasks({ KUROKO_CUSTOM_TASKS: '{"other":"bin/other"}' }).keys()]).toEqual(['other']);
      expect(loadCustomTasks({}).size).toBe(0);
      expect(() => loadCustomTasks({ KUROKO_CUSTOM_TASKS: '{}', KUROKO_CUSTOM_TASKS_FILE: file })).toThrow(ConfigError);
      expect(() => loadCustomTasks({ KUROKO_CUSTOM_TASKS: '{"noop":"x"}' })).toThrow(/built-in/);
      expect(() => loadCustomTasks({ KUROKO_CUSTOM_TASKS: 'not json' })).toThrow(/not JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('custom tasks in scripts', () => {
  const script = 'env: VAL1=A\nmy_project_runner: MyProject::Batch1.run\n';

  it('are unknown task types unless configured, and then checked like execute', () => {
    expect(validateScript(script)).toEqual([{ line: 2, column: 1, message: 'unknown task type `my_project_runner`' }]);
    expect(validateScript(script, { customTasks: TASKS })).toEqual([]);
    expect(validateScript('fork:\n  deploy:\n  deploy: # nothing\n', { customTasks: TASKS })).toEqual([
      { line: 2, column: 10, message: 'deploy: a command is required' },
      { line: 3, column: 11, message: 'deploy: a command is required' },
    ]);
  });

  it('are known to `kuroko validate` through KUROKO_CUSTOM_TASKS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-validate-'));
    try {
      const file = join(dir, 'job.kuroko');
      writeFileSync(file, script);
      const run = async (env: Record<string, string>) => {
        const out = { stdout: '', stderr: '' };
        const code = await runValidate([file], { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t) }, env);
        return { code, ...out };
      };
      expect(await run({})).toEqual({ code: 1, stdout: `${file}:2:1: unknown task type \`my_project_runner\`\n`, stderr: '' });
      expect(await run({ KUROKO_CUSTOM_TASKS: '{"my_project_runner":"bin/run"}' })).toEqual({ code: 0, stdout: '', stderr: '' });
      expect((await run({ KUROKO_CUSTOM_TASKS: '{"env":"bin/run"}' })).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are shown in the console with the command they run', () => {
    const page = renderScript(script, () => undefined, TASKS).toString();
    expect(page).toContain('<span class="task" title="custom task">my_project_runner</span>');
    expect(page).toContain('(custom task, runs: cd /srv/app &amp;&amp; bin/rails runner &#39;MyProject::Batch1.run&#39;)');
    expect(renderScript(script, () => undefined).toString()).not.toContain('custom task');
  });
});

describe('custom tasks in the engine (SQLite)', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
  });
  afterAll(async () => {
    await tdb?.close();
  });

  it('runs the command template with the option and the token environment, like execute', async () => {
    const services = servicesFor(tdb, { customTasks: TASKS });
    await insertDefinition(tdb.db, 1, 'env: VAL1=A\nmy_project_runner: MyProject::Batch1.run\n');
    const { instance } = await services.operations.launch({ definitionId: 1, launchedBy: 'test' });
    for (let i = 0; i < 3; i++) await services.processorPass();
    const execution = await tdb.db.selectFrom('executions').select(['shell', 'env']).executeTakeFirstOrThrow();
    expect(execution.shell).toBe("cd /srv/app && bin/rails runner 'MyProject::Batch1.run'");
    expect(JSON.parse(execution.env)).toMatchObject({ VAL1: 'A', KUROKO2_JOB_INSTANCE_ID: String(instance.id) });
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('success');
  });

  it('cancels an instance whose custom task the deployment does not configure (critical)', async () => {
    const services = servicesFor(tdb);
    await insertDefinition(tdb.db, 2, 'deploy: staging\n');
    const { instance } = await services.operations.launch({ definitionId: 2, launchedBy: 'test' });
    await runUntilIdle(services);
    expect(await statusOf(tdb.db, instance.id)).toBe('canceled');
    expect((await logMessages(tdb.db, instance.id)).join('\n')).toContain('unknown task type `deploy`');
  });
});
