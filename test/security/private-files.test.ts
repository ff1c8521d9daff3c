/** Issue 13, finding 6 (files): kuroko.db and command logs were created world-readable in a 0755 data dir. */
import { mkdtemp, rm, stat, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLogSink } from '../../adapters/logs/file-log-sink';
import { securePrivateDataDir } from '../../cli/dev-command';

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('private files', () => {
  let root: string;
  const umask = process.umask();
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kuroko-files-'));
    // The usual umask: without explicit modes files come out 0644 and dirs 0755.
    process.umask(0o022);
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(root, { recursive: true, force: true });
  });

  it('creates the data dir 0700 and the database 0600, and tightens ones left by an older version', async () => {
    const fresh = join(root, 'fresh');
    securePrivateDataDir(fresh);
    expect(await modeOf(fresh)).toBe(0o700);
    expect(await modeOf(join(fresh, 'kuroko.db'))).toBe(0o600);
    expect(await modeOf(join(fresh, 'logs'))).toBe(0o700);

    const old = join(root, 'old');
    await mkdir(old, { mode: 0o755 });
    await writeFile(join(old, 'kuroko.db'), '', { mode: 0o644 });
    securePrivateDataDir(old);
    expect(await modeOf(old)).toBe(0o700);
    expect(await modeOf(join(old, 'kuroko.db'))).toBe(0o600);
  });

  it('writes command logs 0600 in a 0700 dir', async () => {
    const dir = join(root, 'logs');
    const sink = new FileLogSink(dir);
    await sink.append(7, 'secret output\n');
    await sink.closeAll();
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(sink.pathFor(7))).toBe(0o600);
  });
});
