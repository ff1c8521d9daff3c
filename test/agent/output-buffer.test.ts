import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_HEAD_BYTES, DEFAULT_OUTPUT_TAIL_BYTES, OutputBuffer } from '../../agent/output-buffer';

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/** The reference: the longest prefix within the head limit, then the longest suffix of the rest within the tail limit. */
function expectedSplit(text: string, headLimit: number, tailLimit: number): { head: string; tail: string } {
  const chars = Array.from(text);
  let head = '';
  let i = 0;
  for (; i < chars.length; i++) {
    const next = head + (chars[i] ?? '');
    if (bytes(next) > headLimit) break;
    head = next;
  }
  const rest = chars.slice(i);
  let tail = '';
  for (let j = rest.length - 1; j >= 0; j--) {
    const next = (rest[j] ?? '') + tail;
    if (bytes(next) > tailLimit) break;
    tail = next;
  }
  return { head, tail };
}

describe('OutputBuffer', () => {
  it('keeps a small output whole', () => {
    const buffer = new OutputBuffer();
    buffer.append('hello ');
    buffer.append('世界 😀\n');
    expect(buffer.text()).toBe('hello 世界 😀\n');
    expect(buffer.head).toBe('hello 世界 😀\n');
    expect(buffer.tail).toBe('');
    expect(buffer.totalBytes).toBe(bytes('hello 世界 😀\n'));
    expect(buffer.truncated).toBe(false);
  });

  it("defaults to 8 KiB head and tail, so an execution row fits the Data API's 64 KB", () => {
    expect(DEFAULT_OUTPUT_HEAD_BYTES).toBe(8 * 1024);
    expect(DEFAULT_OUTPUT_TAIL_BYTES).toBe(8 * 1024);
    const buffer = new OutputBuffer();
    buffer.append('x'.repeat(100_000));
    expect(buffer.head.length).toBe(8 * 1024);
    expect(buffer.tail.length).toBe(8 * 1024);
    expect(buffer.omittedBytes).toBe(100_000 - 16 * 1024);
  });

  it('cuts the head before a character that does not fit, and keeps later ones out of it', () => {
    const buffer = new OutputBuffer({ headBytes: 5, tailBytes: 100 });
    buffer.append('あい');
    buffer.append('a');
    expect(buffer.head).toBe('あ');
    expect(buffer.tail).toBe('いa');
    expect(buffer.truncated).toBe(false);
    expect(buffer.text()).toBe('あいa');
  });

  it('rolls the tail in whole characters and marks the omission', () => {
    const buffer = new OutputBuffer({ headBytes: 4, tailBytes: 6 });
    for (const chunk of ['ab', 'cd', 'ef', '日本', '😀', 'g']) buffer.append(chunk);
    expect(buffer.head).toBe('abcd');
    // '😀g' is 5 bytes; adding '本' would make 8.
    expect(buffer.tail).toBe('😀g');
    expect(buffer.totalBytes).toBe(4 + 2 + 6 + 4 + 1);
    expect(buffer.omittedBytes).toBe(8);
    expect(buffer.truncated).toBe(true);
    expect(buffer.text()).toBe('abcd\n[... 8 bytes omitted ...]\n😀g');
  });

  it('handles zero limits', () => {
    const buffer = new OutputBuffer({ headBytes: 0, tailBytes: 0 });
    buffer.append('abc');
    expect(buffer.head).toBe('');
    expect(buffer.tail).toBe('');
    expect(buffer.omittedBytes).toBe(3);
  });

  it('rejects a negative limit', () => {
    expect(() => new OutputBuffer({ headBytes: -1 })).toThrow(RangeError);
  });

  it('stays bounded and exact over many small appends', () => {
    const buffer = new OutputBuffer({ headBytes: 10, tailBytes: 10 });
    let all = '';
    for (let i = 0; i < 20_000; i++) {
      const chunk = i % 3 === 0 ? 'あ' : i % 3 === 1 ? '😀' : 'z';
      buffer.append(chunk);
      all += chunk;
    }
    expect({ head: buffer.head, tail: buffer.tail }).toEqual(expectedSplit(all, 10, 10));
    expect(buffer.totalBytes).toBe(bytes(all));
  });

  it('matches the reference split for any chunking of any text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { maxLength: 30 }),
        fc.nat(40),
        fc.nat(40),
        (chunks, headBytes, tailBytes) => {
          const buffer = new OutputBuffer({ headBytes, tailBytes });
          for (const chunk of chunks) buffer.append(chunk);
          const all = chunks.join('');
          const expected = expectedSplit(all, headBytes, tailBytes);
          expect(buffer.head).toBe(expected.head);
          expect(buffer.tail).toBe(expected.tail);
          expect(buffer.totalBytes).toBe(bytes(all));
          expect(buffer.omittedBytes).toBe(bytes(all) - bytes(expected.head) - bytes(expected.tail));
          if (!buffer.truncated) expect(buffer.text()).toBe(all);
        },
      ),
    );
  });
});
