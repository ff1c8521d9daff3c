/**
 * The operator CLI against a real server: `kuroko dev` as a child process (HTTP API, processor, two agents running
 * real commands), and `bin/kuroko.js launch|instances|logs|retry|skip|cancel|definitions` as child processes
 * with KUROKO_URL and KUROKO_CLIENT, checked by their exit status and output. Definitions-as-code steps that need
 * no process of their own call the CLI's main() in-process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import { startLocalMode, type LocalModeProcess } from '../helpers/local-mode-process';
import { waitFor } from '../helpers/wait-for';

const BIN = resolve(import.meta.dirname, '../../bin/kuroko.js');
const ADMIN = 'ops-cli:s3cret-admin-0123456';
const VIEWER = 'viewer-cli:s3cret-read-0123456';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Definition {
  id: number;
  name: string;
  script: string;
  cron: string[];
  tags: string[];
}

// Each step starts several `kuroko` processes (a second or more each on a busy machine).
describe('the operator CLI over a running server', { timeout: 120_000 }, () => {
  let dev: LocalModeProcess;
  let dir: string;
  const ids: Record<string, number> = {};

  /** Runs the real `kuroko` with the server's URL and the admin client from the environment. */
  function kuroko(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, KUROKO_URL: dev.url, KUROKO_CLIENT: ADMIN, KUROKO_POLL_INTERVAL_MS: '100', ...env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  /** main() in-process, with the connection given as options. */
  async function kurokoInProcess(args: readonly string[]): Promise<RunResult> {
    let stdout = '';
    let stderr = '';
    const code = await main([...args, '--url', dev.url, '--client', ADMIN], { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { code, stdout, stderr };
  }

  const definitions = async () => (await dev.api<Definition[]>('/v1/definitions')).body;

  beforeAll(async () => {
    dev = await startLocalMode({ env: { KUROKO_API_CLIENTS: `${ADMIN}:admin,${VIEWER}:read` } });
    dir = await mkdtemp(join(tmpdir(), 'kuroko-defs-'));
    const create = async (name: string, script: string, extra: Record<string, unknown> = {}) => {
      const res = await dev.api<Definition>('/v1/definitions', { method: 'POST', body: { name, script, api_allowed: true, ...extra } });
      expect(res.status).toBe(201);
      ids[name] = res.body.id;
    };
    await create('ok-job', 'execute: echo "out-line $WHO"\n');
    await create('failing-job', 'execute: echo failing; exit 3\nexecute: echo after\n');
    await create('slow-job', 'execute: sleep 60\n');
  });
  afterAll(async () => {
    await dev?.stop('SIGKILL');
    dev?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('launch --wait exits 0 on success and prints the instance id; --follow prints the log as it comes', async () => {
    const waited = await kuroko(['launch', 'ok-job', '--wait']);
    expect(waited.stderr).toMatch(/: success\n$/);
    expect(waited.code).toBe(0);
    const id = Number(waited.stdout.trim());
    const instance = await dev.api<{ status: string }>(`/v1/definitions/${ids['ok-job']}/instances/${id}`);
    expect(instance.body.status).toBe('success');

    const followed = await kuroko(['launch', String(ids['ok-job']), '--env', 'WHO=followed', '--follow']);
    expect(followed.code).toBe(0);
    const [first, ...lines] = followed.stdout.split('\n');
    expect(Number(first)).toBeGreaterThan(id);
    expect(lines.join('\n')).toMatch(/INFO {2}Launched by instances API \(ops-cli\)/);
    expect(lines.join('\n')).toMatch(/\[SUCCESS\] `echo "out-line \$WHO"` returns 0\.[\s\S]*out-line followed/);
  });

  it('launch --wait exits 3 on error; retry runs the failed token again, skip moves past it, logs --follow exits with the outcome', async () => {
    const failed = await kuroko(['launch', 'failing-job', '--wait']);
    expect(failed.code).toBe(3);
    const id = Number(failed.stdout.trim());
    expect(failed.stderr).toContain(`instance ${id} of failing-job (definition ${ids['failing-job']}): error`);
    expect(failed.stderr).toMatch(/token \d+ at \/0-execute/);
    expect(failed.stderr).toContain(`kuroko retry ${id}`);

    const listed = await kuroko(['instances']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+failing-job\\s+error\\s`, 'm'));

    const retried = await kuroko(['retry', String(id)]);
    expect(retried.stderr).toBe('');
    expect(retried.stdout).toMatch(/retried/);
    expect(retried.code).toBe(0);
    // The command runs again and fails again: a second failure in the log, the instance in error.
    await waitFor(async () => {
      const got = await dev.api<{ message: string }[]>(`/v1/definitions/${ids['failing-job']}/instances/${id}/logs`);
      return got.body.filter((l) => l.message.includes('`echo failing; exit 3` returns 3')).length === 2;
    });
    expect((await dev.api<{ status: string }>(`/v1/definitions/${ids['failing-job']}/instances/${id}`)).body.status).toBe('error');
    const logs = await kuroko(['logs', String(id), '--job', 'failing-job']);
    expect(logs.code).toBe(0);
    expect(logs.stdout.match(/`echo failing; exit 3` returns 3/g)).toHaveLength(2);

    const skipped = await kuroko(['skip', String(id)]);
    expect(skipped.code).toBe(0);
    const followed = await kuroko(['logs', String(id), '--follow']);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toMatch(/`echo after` returns 0/);
  });

  it('cancel ends a running instance, and logs --follow on it exits 4 for canceled', async () => {
    const launched = await kuroko(['launch', 'slow-job']);
    expect(launched.code).toBe(0);
    const id = Number(launched.stdout.trim());
    await waitFor(async () => (await dev.api<{ executions: { started_at: string | null }[] }>(`/v1/definitions/${ids['slow-job']}/instances/${id}`)).body.executions[0]?.started_at);
    const following = kuroko(['logs', String(id), '--follow']);
    const canceled = await kuroko(['cancel', String(id)]);
    expect(canceled.stdout).toBe(`instance ${id}: canceled\n`);
    expect(canceled.code).toBe(0);
    expect((await following).code).toBe(4);
    const listed = await kuroko(['instances', 'slow-job']);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+slow-job\\s+canceled\\s`, 'm'));
  });

  it('turns every API error into a message and exit 1, and bad arguments into exit 2', async () => {
    const wrong = await kuroko(['instances'], { KUROKO_CLIENT: 'ops-cli:wrong' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^kuroko instances: listing definitions: 401 unauthorized: .*\n {2}\(check --client \/ KUROKO_CLIENT\)\n$/);
    const readOnly = await kuroko(['launch', 'ok-job'], { KUROKO_CLIENT: VIEWER });
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/launching ok-job: 403 forbidden: /);
    const unknown = await kuroko(['launch', 'no-such-job']);
    expect(unknown).toMatchObject({ code: 1, stderr: 'kuroko launch: no job definition named or numbered no-such-job\n' });
    expect((await kuroko(['launch', 'ok-job', '--idempotency-key', 'cli-key', '--env', 'WHO=first'])).code).toBe(0);
    const reused = await kuroko(['launch', 'ok-job', '--idempotency-key', 'cli-key', '--env', 'WHO=second']);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/^kuroko launch: launching ok-job: 422 unprocessable_entity: .*Idempotency-Key/i);
    const unreachable = await kuroko(['instances'], { KUROKO_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach the API/);
    const usage = await kuroko(['launch', 'ok-job', '--env', 'not a pair']);
    expect(usage.code).toBe(2);
    const noUrl = await kuroko(['instances'], { KUROKO_URL: '' });
    expect(noUrl).toMatchObject({ code: 2, stderr: expect.stringMatching(/no API URL: give --url URL or set KUROKO_URL/) });
  });

  it('export then apply changes nothing; an edit is shown as a diff and applied, keeping the id', async () => {
    const exported = await kuroko(['definitions', 'export', dir]);
    expect(exported.code).toBe(0);
    const deployed = await definitions();
    expect((await readdir(dir)).sort()).toEqual(deployed.map((d) => `${d.name}.kuroko`).sort());
    const okFile = join(dir, 'ok-job.kuroko');
    expect(await readFile(okFile, 'utf8')).toContain('# name: ok-job\n');

    const same = await kuroko(['definitions', 'apply', dir]);
    expect(same.stdout).toBe(`0 to create, 0 to change, 0 to delete, ${deployed.length} unchanged: nothing to change\n`);
    expect(same.code).toBe(0);

    const text = await readFile(okFile, 'utf8');
    await writeFile(okFile, text.replace('# cron: []', '# cron: ["0 3 * * *"]').replace('# tags: []', '# tags: ["nightly"]').replace('out-line $WHO', 'out-line changed'));
    const dry = await kurokoInProcess(['definitions', 'apply', dir, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`~ ok-job (definition ${ids['ok-job']}, ${okFile}): change\n`);
    expect(dry.stdout).toContain('    cron: [] -> ["0 3 * * *"]\n    tags: [] -> ["nightly"]\n    script:\n    @@ -1,1 +1,1 @@\n    -execute: echo "out-line $WHO"\n    +execute: echo "out-line changed"\n');
    expect(dry.stdout).toMatch(/0 to create, 1 to change, 0 to delete, \d+ unchanged \(dry run: nothing changed\)\n$/);
    expect(await definitions()).toEqual(deployed);

    const applied = await kurokoInProcess(['definitions', 'apply', dir]);
    expect(applied.stdout).toContain('    -execute: echo "out-line $WHO"\n    +execute: echo "out-line changed"\n');
    expect(applied.stdout).toMatch(/1 to change, 0 to delete, \d+ unchanged: applied\n$/);
    expect(applied.code).toBe(0);
    const after = (await definitions()).find((d) => d.name === 'ok-job');
    expect(after).toMatchObject({ id: ids['ok-job'], cron: ['0 3 * * *'], tags: ['nightly'], script: 'execute: echo "out-line changed"\n' });
    expect((await kurokoInProcess(['definitions', 'apply', dir])).stdout).toMatch(/nothing to change\n$/);
  });

  it('an invalid script anywhere changes nothing, with every problem located in its file', async () => {
    const okFile = join(dir, 'ok-job.kuroko');
    const good = await readFile(okFile, 'utf8');
    await writeFile(okFile, good.replace('"0 3 * * *"', '"0 4 * * *"'));
    const badFile = join(dir, 'broken.kuroko');
    await writeFile(badFile, '# --- kuroko definition\n# name: broken\n# ---\nnoop:\ntimeout: soon\nbogus: 1\n');
    const before = await definitions();
    const refused = await kurokoInProcess(['definitions', 'apply', dir]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(new RegExp(`^${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: .*\n${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: `));
    expect(refused.stderr).toMatch(/nothing changed \(2 problem\(s\)\)\n$/);
    expect(await definitions()).toEqual(before);
    await rm(badFile);

    // What only the server knows (queues, cron expressions) it refuses when applied: its message, every problem.
    await writeFile(badFile, '# --- kuroko definition\n# name: broken\n# cron: ["61 * * * *", "* * * * * * *"]\n# ---\nqueue: no-such-queue\nnoop:\n');
    const serverRefused = await kurokoInProcess(['definitions', 'apply', dir]);
    expect(serverRefused.code).toBe(1);
    expect(serverRefused.stderr).toMatch(/^kuroko definitions: creating broken: 422 unprocessable_entity: /);
    // The script's line 1 is the file's line 5, below the header's four.
    expect(serverRefused.stderr).toContain(`\n  ${badFile}:5:8: queue: queue \`no-such-queue\` is not known`);
    expect(serverRefused.stderr).toContain('\n  cron: `61 * * * *` is not a valid cron expression');
    expect(serverRefused.stderr).toMatch(/\nstopped \(nothing was changed\)\n$/);
    expect(await definitions()).toEqual(before);
    await rm(badFile);
    await writeFile(okFile, good);
  });

  it('creates a definition from a new file, and --prune deletes those without a file', async () => {
    await writeFile(join(dir, 'new-job.kuroko'), '# --- kuroko definition\n# name: new-job\n# cron: ["15 * * * *"]\n# api_allowed: true\n# ---\nexecute: echo new\n');
    await rm(join(dir, 'slow-job.kuroko'));
    const before = await definitions();
    const withoutPrune = await kuroko(['definitions', 'apply', dir]);
    expect(withoutPrune.code).toBe(0);
    expect(withoutPrune.stdout).toContain('+ new-job (');
    expect(withoutPrune.stdout).toContain('    cron: ["15 * * * *"]\n');
    expect(withoutPrune.stdout).toMatch(/1 to create, 0 to change, 0 to delete, \d+ unchanged: applied\n$/);
    const created = (await definitions()).find((d) => d.name === 'new-job');
    expect(created).toMatchObject({ cron: ['15 * * * *'], script: 'execute: echo new\n' });
    expect((await definitions()).map((d) => d.id)).toEqual([...before.map((d) => d.id), created!.id]);

    const pruned = await kuroko(['definitions', 'apply', dir, '--prune']);
    expect(pruned.stdout).toContain(`- slow-job (definition ${ids['slow-job']}): delete (no file, --prune)\n`);
    expect(pruned.code).toBe(0);
    expect((await definitions()).map((d) => d.name)).not.toContain('slow-job');
    // Export mirrors the deployment: the file of a deleted definition goes too.
    await kuroko(['definitions', 'export', dir]);
    expect((await readdir(dir)).sort()).toEqual((await definitions()).map((d) => `${d.name}.kuroko`).sort());
  });
});
