/**
 * Symmetric mapping between domain values and the shapes the three drivers hand back. Writes pass `Date` and
 * `boolean` values straight to Kysely (each dialect's driver encodes them the same way); reads come back in
 * driver-specific shapes and are normalised here.
 */
import * as z from 'zod/mini';
import { KurokoError, ERROR_CODES } from '../core/errors';

/** 'YYYY-MM-DD HH:MM:SS' with an optional fraction: MySQL DATETIME text, our SQLite storage, Data API strings. */
const DB_TIME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?$/;
const MILLISECOND_DIGITS = 3;

/** Formats a time as the UTC text stored in DATETIME(3) / SQLite columns ('YYYY-MM-DD HH:MM:SS.fff'). */
export function toDbTimeString(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new TypeError('cannot store an invalid Date');
  return date.toISOString().slice(0, 23).replace('T', ' ');
}

/** Reads a time column (string from SQLite, mysql2 `dateStrings` and the Data API, or a `Date`) as a UTC `Date`. */
export function fromDbTime(value: Date | string): Date {
  if (value instanceof Date) return new Date(value.getTime());
  const match = DB_TIME_PATTERN.exec(value);
  if (!match) throw new KurokoError(ERROR_CODES.validation, `unexpected time value from the database: ${value}`);
  const [, year, month, day, hour, minute, second, fraction = ''] = match;
  const millis = Number(fraction.padEnd(MILLISECOND_DIGITS, '0').slice(0, MILLISECOND_DIGITS));
  return new Date(
    Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), millis),
  );
}

/** Reads a nullable time column. */
export function fromNullableDbTime(value: Date | string | null): Date | null {
  return value === null ? null : fromDbTime(value);
}

/** Reads a TINYINT(1) / INTEGER flag (0/1 from mysql2 and SQLite, a boolean from the Data API). */
export function fromDbBool(value: boolean | number | string): boolean {
  if (typeof value === 'boolean') return value;
  return Number(value) !== 0;
}

/** Reads a BIGINT that a driver may return as a string (mysql2 beyond 2^53, DECIMAL aggregates). */
export function fromDbInt(value: number | string | bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new KurokoError(ERROR_CODES.validation, `integer out of range: ${String(value)}`);
  return n;
}

/** Serialises a value for a JSON text column. */
export function toJsonColumn(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * Parses a JSON text column and validates it with a zod schema; a bad row surfaces as a clear error, not a crash
 * later. The repositories write their schemas with zod/mini, which tree-shakes to a few kilobytes: the agent reads
 * rows too and stays small.
 */
export function parseJsonColumn<T>(schema: z.core.$ZodType<T>, text: string, column = 'json column'): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new KurokoError(ERROR_CODES.validation, `${column} holds invalid JSON`, { cause });
  }
  const parsed = z.safeParse(schema, raw);
  if (!parsed.success) {
    throw new KurokoError(ERROR_CODES.validation, `${column} does not match its schema: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
