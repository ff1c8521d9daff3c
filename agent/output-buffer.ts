/**
 * Keeps what the database holds of a command's output (D12): the first bytes (head) and a rolling window
 * of the last bytes (tail), measured in UTF-8 bytes and always cut between characters. The whole output
 * goes to the log sink; this buffer is the bounded summary.
 */

import { ROW_LIMITS } from '../core/row-limits';

/** What the execution row keeps (the repository cuts anything longer): the row must fit the Data API's 64 KB. */
export const DEFAULT_OUTPUT_HEAD_BYTES = ROW_LIMITS.outputHeadBytes;
export const DEFAULT_OUTPUT_TAIL_BYTES = ROW_LIMITS.outputTailBytes;
/** Compacts the tail's piece list once this many dropped pieces sit in front of it. */
const COMPACT_AFTER_PIECES = 1024;

export interface OutputBufferOptions {
  headBytes?: number;
  tailBytes?: number;
}

interface Piece {
  text: string;
  bytes: number;
}

/** Head and rolling tail of a text stream, bounded in UTF-8 bytes. */
export class OutputBuffer {
  readonly #headLimit: number;
  readonly #tailLimit: number;
  #head = '';
  #headBytes = 0;
  #headFull = false;
  #pieces: Piece[] = [];
  #firstPiece = 0;
  #tailBytes = 0;
  #totalBytes = 0;

  constructor(options: OutputBufferOptions = {}) {
    this.#headLimit = nonNegative(options.headBytes ?? DEFAULT_OUTPUT_HEAD_BYTES, 'headBytes');
    this.#tailLimit = nonNegative(options.tailBytes ?? DEFAULT_OUTPUT_TAIL_BYTES, 'tailBytes');
  }

  /** Adds a chunk of output. */
  append(chunk: string): void {
    if (chunk === '') return;
    let rest = chunk;
    if (!this.#headFull) {
      const fit = prefixWithin(chunk, this.#headLimit - this.#headBytes);
      this.#head += chunk.slice(0, fit.length);
      this.#headBytes += fit.bytes;
      this.#totalBytes += fit.bytes;
      if (fit.length === chunk.length) return;
      // The next character does not fit; later, smaller characters must not jump the queue either.
      this.#headFull = true;
      rest = chunk.slice(fit.length);
    }
    const bytes = utf8Length(rest);
    this.#totalBytes += bytes;
    this.#pieces.push({ text: rest, bytes });
    this.#tailBytes += bytes;
    this.#trimTail();
  }

  /** The first bytes of the output (at most headBytes). */
  get head(): string {
    return this.#head;
  }

  /** The last bytes of the output after the head (at most tailBytes); never repeats the head. */
  get tail(): string {
    let text = '';
    for (let i = this.#firstPiece; i < this.#pieces.length; i++) text += this.#pieces[i]?.text ?? '';
    return text;
  }

  /** UTF-8 bytes appended so far. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Bytes between head and tail that were dropped. */
  get omittedBytes(): number {
    return this.#totalBytes - this.#headBytes - this.#tailBytes;
  }

  /** Whether anything was dropped between head and tail. */
  get truncated(): boolean {
    return this.omittedBytes > 0;
  }

  /** The whole output when nothing was dropped; otherwise head, an omission marker and tail. */
  text(): string {
    if (!this.truncated) return this.#head + this.tail;
    return `${this.#head}\n[... ${this.omittedBytes} bytes omitted ...]\n${this.tail}`;
  }

  #trimTail(): void {
    while (this.#tailBytes > this.#tailLimit) {
      const front = this.#pieces[this.#firstPiece];
      if (front === undefined) break;
      const excess = this.#tailBytes - this.#tailLimit;
      if (front.bytes <= excess) {
        this.#tailBytes -= front.bytes;
        this.#firstPiece++;
        continue;
      }
      const cut = prefixCovering(front.text, excess);
      front.text = front.text.slice(cut.length);
      front.bytes -= cut.bytes;
      this.#tailBytes -= cut.bytes;
    }
    if (this.#firstPiece >= COMPACT_AFTER_PIECES && this.#firstPiece * 2 >= this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#firstPiece);
      this.#firstPiece = 0;
    }
  }
}

function nonNegative(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

/** UTF-16 units and UTF-8 bytes of the character starting at index i (a lone surrogate encodes as U+FFFD). */
function charAt(text: string, i: number): { units: number; bytes: number } {
  const code = text.charCodeAt(i);
  if (code < 0x80) return { units: 1, bytes: 1 };
  if (code < 0x800) return { units: 1, bytes: 2 };
  if (code >= 0xd800 && code <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return { units: 2, bytes: 4 };
  }
  return { units: 1, bytes: 3 };
}

/** The longest prefix of whole characters within maxBytes. */
function prefixWithin(text: string, maxBytes: number): { length: number; bytes: number } {
  let length = 0;
  let bytes = 0;
  while (length < text.length) {
    const char = charAt(text, length);
    if (bytes + char.bytes > maxBytes) break;
    length += char.units;
    bytes += char.bytes;
  }
  return { length, bytes };
}

/** The shortest prefix of whole characters holding at least minBytes. */
function prefixCovering(text: string, minBytes: number): { length: number; bytes: number } {
  let length = 0;
  let bytes = 0;
  while (length < text.length && bytes < minBytes) {
    const char = charAt(text, length);
    length += char.units;
    bytes += char.bytes;
  }
  return { length, bytes };
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
