import { afterEach, describe, expect, it } from 'vitest';
import { sampleIntervalMs, sampleProcessGroupRss } from '../../agent/memory-sampler';
import { startCommand } from '../../agent/process-runner';
import type { RunningCommand } from '../../agent/process-runner';

const POLL_MS = 10;
const WAIT_MS = 15_000;
const KB_PER_MIB = 1024;
const BUFFER_MIB = 50;

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A node process that fills (so touches every page of) a buffer, says so, and then idles. */
const holder = `"$NODE_BIN" -e 'const b = Buffer.alloc(${BUFFER_MIB} * 1024 * 1024, 1); console.log("ready"); setInterval(() => b[0]++, 1000)'`;
const started: RunningCommand[] = [];

function run(shell: string): { running: RunningCommand; output: () => string } {
  let output = '';
  const running = startCommand(
    { shell, env: { NODE_BIN: process.execPath }, inheritEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    { onOutput: (chunk) => (output += chunk) },
  );
  started.push(running);
  return { running, output: () => output };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.kill(0)));
});

describe('sampleProcessGroupRss', () => {
  it('measures a group holding a 50 MiB buffer, and nothing once it is gone', async () => {
    const { running, output } = run(holder);
    await waitFor('the buffer to be filled', () => output().includes('ready'));
    const pgid = running.pgid ?? -1;
    expect(sampleProcessGroupRss(pgid)).toBeGreaterThan(BUFFER_MIB * KB_PER_MIB);

    expect((await running.kill(5_000)).groupEmpty).toBe(true);
    await running.done;
    expect(sampleProcessGroupRss(pgid)).toBeUndefined();
  });

  it('sums every member of the group, not just the leader', async () => {
    const { running, output } = run(`${holder} & ${holder} & wait`);
    await waitFor('both buffers to be filled', () => output().split('ready').length - 1 === 2);
    expect(sampleProcessGroupRss(running.pgid ?? -1)).toBeGreaterThan(2 * BUFFER_MIB * KB_PER_MIB);
  });

  it('is undefined for a group with no member', async () => {
    const { running } = run('true');
    await running.done;
    expect(sampleProcessGroupRss(running.pgid ?? -1)).toBeUndefined();
  });
});

describe('sampleIntervalMs', () => {
  it("follows Kuroko2's clamp(count², 1 s, 1800 s)", () => {
    expect([0, 1, 2, 3, 10, 42, 43, 1000].map(sampleIntervalMs)).toEqual([
      1_000, 1_000, 4_000, 9_000, 100_000, 1_764_000, 1_800_000, 1_800_000,
    ]);
  });

  it('treats a nonsense count as the longest interval or the shortest', () => {
    expect(sampleIntervalMs(Number.NaN)).toBe(1_800_000);
    expect(sampleIntervalMs(-5)).toBe(1_000);
  });
});
