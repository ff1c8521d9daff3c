/** Minutes of one wall-clock day as a bitset, so whole days of two schedules compare in a few word operations. */

export const MINUTES_PER_HOUR = 60;
export const HOURS_PER_DAY = 24;
export const MINUTES_PER_DAY = MINUTES_PER_HOUR * HOURS_PER_DAY;

const WORD_BITS = 32;
const WORD_COUNT = MINUTES_PER_DAY / WORD_BITS;
const LOW_FIVE_BITS = WORD_BITS - 1;

/** A set of minutes of the day (0 = 00:00, 1439 = 23:59). Immutable once built. */
export class MinuteSet {
  private constructor(private readonly words: Uint32Array) {}

  /** The set of every `hour:minute` with `hour` in `hours` and `minute` in `minutes`. */
  static fromHoursAndMinutes(hours: readonly number[], minutes: readonly number[]): MinuteSet {
    const words = new Uint32Array(WORD_COUNT);
    for (const hour of hours) {
      for (const minute of minutes) setBit(words, hour * MINUTES_PER_HOUR + minute);
    }
    return new MinuteSet(words);
  }

  /** The union of several sets (the empty set for none). */
  static union(sets: readonly MinuteSet[]): MinuteSet {
    const words = new Uint32Array(WORD_COUNT);
    for (const set of sets) {
      for (let i = 0; i < WORD_COUNT; i += 1) words[i] = (words[i] ?? 0) | (set.words[i] ?? 0);
    }
    return new MinuteSet(words);
  }

  /** The minutes of this set that are not in `other`. */
  minus(other: MinuteSet): MinuteSet {
    const words = new Uint32Array(WORD_COUNT);
    for (let i = 0; i < WORD_COUNT; i += 1) words[i] = (this.words[i] ?? 0) & ~(other.words[i] ?? 0);
    return new MinuteSet(words);
  }

  /** True when no minute is in the set. */
  isEmpty(): boolean {
    return this.words.every((word) => word === 0);
  }

  /** True when `minuteOfDay` is in the set. */
  has(minuteOfDay: number): boolean {
    const word = this.words[Math.floor(minuteOfDay / WORD_BITS)] ?? 0;
    return ((word >>> (minuteOfDay & LOW_FIVE_BITS)) & 1) === 1;
  }

  /** The smallest minute of the set that is `>= from`, or -1. */
  nextFrom(from: number): number {
    if (from >= MINUTES_PER_DAY) return -1;
    let index = Math.floor(Math.max(from, 0) / WORD_BITS);
    // Mask off the bits below `from` in its own word; later words are taken whole.
    let word = ((this.words[index] ?? 0) >>> (Math.max(from, 0) & LOW_FIVE_BITS)) << (Math.max(from, 0) & LOW_FIVE_BITS);
    for (;;) {
      if (word !== 0) return index * WORD_BITS + lowestSetBit(word);
      index += 1;
      if (index >= WORD_COUNT) return -1;
      word = this.words[index] ?? 0;
    }
  }
}

function setBit(words: Uint32Array, bit: number): void {
  const index = Math.floor(bit / WORD_BITS);
  words[index] = (words[index] ?? 0) | (1 << (bit & LOW_FIVE_BITS));
}

function lowestSetBit(word: number): number {
  // `word & -word` isolates the lowest set bit; clz32 then gives its position from the top.
  return LOW_FIVE_BITS - Math.clz32(word & -word);
}
