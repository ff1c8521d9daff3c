/**
 * The chaos harness's process tracker (bench/chaos/processes.ts) restarts an agent as systemd does on EC2
 * (`Restart=on-failure`): after a non-zero exit or a signal it did not send, with the same command and environment;
 * never after exit 0 or its own stop, and a stop cancels a pending restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { endAll, isAlive, spawnTracked, type Tracked } from '../../bench/chaos/processes';
import { waitFor } from '../helpers/wait-for';

const DELAY_MS = 200;
const dir = mkdtempSync(join(tmpdir(), 'kuroko-chaos-restart-'));

/** A tracked `node -e script`, restarted on failure after DELAY_MS; `exits` records each restart's exit. */
function node(script: string, env: Record<string, string> = {}): { entry: Tracked; exits: string[] } {
  const exits: string[] = [];
  const entry = spawnTracked('test', process.execPath, ['-e', script], { env: { ...process.env, ...env } }, {
    restartOnFailure: { delayMs: DELAY_MS, onRestart: (_entry, exit) => exits.push(exit) },
  });
  return { entry, exits };
}

afterAll(async () => {
  await endAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('chaos process tracker, restart on failure', () => {
  it('starts a process that exited non-zero again, with the same arguments and environment; stop ends the new one', async () => {
    const marker = join(dir, 'failed-once');
    // Fails the first time (leaving the marker), stays up the second.
    const { entry, exits } = node(
      "const fs = require('node:fs'); console.log('run ' + process.env.CHAOS_TEST); " +
        "if (!fs.existsSync(process.env.MARKER)) { fs.writeFileSync(process.env.MARKER, ''); process.exit(3); } setInterval(() => {}, 1000);",
      { MARKER: marker, CHAOS_TEST: 'same-env' },
    );
    const first = entry.child.pid!;
    await waitFor(() => exits.length === 1 && entry.alive());
    expect(exits).toEqual(['code 3']);
    expect(entry.child.pid).not.toBe(first);
    await waitFor(() => entry.output().match(/run same-env/g)?.length === 2);
    const second = entry.child.pid!;
    await entry.stop();
    expect(isAlive(second)).toBe(false);
    await delay(DELAY_MS * 2);
    expect(entry.restarts()).toBe(1);
    expect(exits).toHaveLength(1);
  });

  it('starts a process killed by a signal it did not send again, but not one it stopped itself', async () => {
    const { entry, exits } = node('setInterval(() => {}, 1000);');
    process.kill(entry.child.pid!, 'SIGKILL');
    await waitFor(() => exits.length === 1 && entry.alive());
    expect(exits).toEqual(['SIGKILL']);
    await entry.stop('SIGTERM');
    await delay(DELAY_MS * 2);
    expect(entry.restarts()).toBe(1);
    expect(entry.alive()).toBe(false);
  });

  it('does not start a process that exited 0 again', async () => {
    const { entry } = node('process.exit(0)');
    await entry.exited;
    await delay(DELAY_MS * 2);
    expect(entry.restarts()).toBe(0);
    expect(entry.alive()).toBe(false);
  });

  it('a stop while a restart is pending cancels it', async () => {
    const { entry } = node('process.exit(3)');
    await waitFor(() => !entry.alive());
    await entry.stop();
    await entry.exited;
    await delay(DELAY_MS * 2);
    expect(entry.restarts()).toBe(0);
    expect(entry.alive()).toBe(false);
  });
});
