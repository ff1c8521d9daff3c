/** The local mode as a newcomer meets it: `npm start`, a launch over HTTP, the command's output in the log. */
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalMode, type LocalModeProcess } from '../helpers/local-mode-process';
import { waitFor } from '../helpers/wait-for';

interface Instance {
  id: number;
  status: string;
}

describe('npm start', () => {
  let dev: LocalModeProcess | undefined;
  afterAll(async () => {
    await dev?.stop('SIGKILL');
    dev?.cleanup();
  });

  it('seeds an example, runs a launched definition to success with its output logged, and restarts where it stopped', async () => {
    dev = await startLocalMode({ viaNpm: true });
    const definitions = await dev.api<{ id: number; name: string }[]>('/v1/definitions');
    expect(definitions.status).toBe(200);
    expect(definitions.body.map((d) => d.name)).toEqual(['hello-kuroko']);
    const definitionId = definitions.body[0]!.id;

    const launched = await dev.api<Instance>(`/v1/definitions/${definitionId}/instances`, { method: 'POST', body: { env: { WHO: 'héllo ✓' } } });
    expect(launched.status).toBe(201);
    const done = await waitFor(
      async () => {
        const got = await dev!.api<Instance>(`/v1/definitions/${definitionId}/instances/${launched.body.id}`);
        return got.body.status === 'working' ? undefined : got.body;
      },
      { timeoutMs: 20_000, description: 'the instance to end' },
    );
    expect(done.status).toBe('success');
    const logs = await dev.api<{ level: string; message: string }[]>(`/v1/definitions/${definitionId}/instances/${launched.body.id}/logs`);
    const messages = logs.body.map((l) => l.message);
    expect(messages[0]).toBe('Launched by instances API (local)');
    expect(messages.some((m) => m.includes('[SUCCESS]') && m.includes(`hello from kuroko (instance ${launched.body.id})`))).toBe(true);

    // The whole output of each command, as its agent streamed it.
    const detail = await dev.api<{ executions: { id: number; shell: string }[] }>(`/v1/definitions/${definitionId}/instances/${launched.body.id}`);
    const greeting = detail.body.executions.find((e) => e.shell.startsWith('echo "$GREETING'));
    const output = await fetch(`${dev.url}/v1/definitions/${definitionId}/instances/${launched.body.id}/executions/${greeting!.id}/output`, {
      headers: { authorization: dev.authorization },
    });
    expect(output.status).toBe(200);
    expect(await output.text()).toBe(`hello from kuroko (instance ${launched.body.id})\n`);
    const foreign = await dev.api(`/v1/definitions/${definitionId}/instances/${launched.body.id}/executions/999999/output`);
    expect(foreign.status).toBe(404);

    // Ctrl-C stops cleanly; a restart on the same data dir keeps everything and seeds nothing twice.
    await dev.stop('SIGINT');
    expect(dev.stdout()).toMatch(/\nstopped\n$/);
    const dataDir = dev.dataDir;
    dev = await startLocalMode({ dataDir });
    const again = await dev.api<{ id: number }[]>('/v1/definitions');
    expect(again.body.map((d) => d.id)).toEqual([definitionId]);
    const instance = await dev.api<Instance>(`/v1/definitions/${definitionId}/instances/${launched.body.id}`);
    expect(instance.body.status).toBe('success');
  }, 90_000);
});
