import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLogSink } from '../../adapters/logs/file-log-sink';
import { OutputBuffer } from '../../agent/output-buffer';
import { startCommand } from '../../agent/process-runner';
import { ValidationError } from '../../core/errors';

let dir: string;
let sink: FileLogSink;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kuroko-logs-'));
  sink = new FileLogSink(join(dir, 'nested', 'logs'));
});

afterEach(async () => {
  await sink.closeAll();
  await rm(dir, { recursive: true, force: true });
});

const pieces = ['日本語', '😀', 'ascii ', 'ﾊﾝｶｸ', '\n', 'é', '𠮷野家', '\t'];

describe('FileLogSink', () => {
  it('stores appends in call order, even when nobody awaits between them', async () => {
    const chunks = Array.from({ length: 500 }, (_, i) => `${i}:${pieces[i % pieces.length]}|`);
    const other = Array.from({ length: 500 }, (_, i) => `other${i};`);
    const writes = chunks.flatMap((chunk, i) => [sink.append(7, chunk), sink.append(8, other[i] ?? '')]);
    await Promise.all(writes);
    expect(await sink.read(7)).toBe(chunks.join(''));
    expect(await sink.read(8)).toBe(other.join(''));
    expect(await readFile(join(dir, 'nested', 'logs', '7.log'), 'utf8')).toBe(chunks.join(''));
  });

  it('reads what was appended before the read, without awaiting the appends', async () => {
    void sink.append(9, 'first ');
    void sink.append(9, 'second');
    expect(await sink.read(9)).toBe('first second');
  });

  it('appends after close by reopening, and reads nothing for an unknown execution', async () => {
    await sink.append(3, 'before close\n');
    await sink.close(3);
    await sink.close(3);
    await sink.append(3, 'after close\n');
    expect(await sink.read(3)).toBe('before close\nafter close\n');
    expect(await sink.read(4)).toBe('');
  });

  it('moves a byte window inward to whole characters', async () => {
    await sink.append(5, 'aあb😀c');
    // Bytes: a 0, あ 1-3, b 4, 😀 5-8, c 9.
    expect(await sink.read(5, { offsetBytes: 2 })).toBe('b😀c');
    expect(await sink.read(5, { maxBytes: 2 })).toBe('a');
    expect(await sink.read(5, { offsetBytes: 1, maxBytes: 5 })).toBe('あb');
    expect(await sink.read(5, { offsetBytes: 4, maxBytes: 3 })).toBe('b');
    expect(await sink.read(5, { offsetBytes: 100 })).toBe('');
  });

  it('rejects an execution id that is not a positive integer', async () => {
    for (const id of [0, -1, 1.5, Number.NaN]) {
      await expect(sink.append(id, 'x')).rejects.toBeInstanceOf(ValidationError);
      await expect(sink.read(id)).rejects.toBeInstanceOf(ValidationError);
    }
  });

  it('keeps the whole output of a real command, with its head and tail alongside', async () => {
    const buffer = new OutputBuffer({ headBytes: 1024, tailBytes: 1024 });
    const appends: Promise<void>[] = [];
    const running = startCommand(
      { shell: 'for i in $(seq 1 3000); do echo "行$i 😀"; echo "err$i" >&2; done', env: {}, inheritEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
      {
        onOutput: (chunk) => {
          buffer.append(chunk);
          appends.push(sink.append(11, chunk));
        },
      },
    );
    expect((await running.done).exitStatus).toBe(0);
    await Promise.all(appends);
    await sink.close(11);
    const expected = Array.from({ length: 3000 }, (_, i) => `行${i + 1} 😀\nerr${i + 1}\n`).join('');
    const stored = await sink.read(11);
    expect(stored).toBe(expected);
    expect(buffer.truncated).toBe(true);
    expect(stored.startsWith(buffer.head)).toBe(true);
    expect(stored.endsWith(buffer.tail)).toBe(true);
    expect(buffer.totalBytes).toBe(Buffer.byteLength(expected));
  });
});
