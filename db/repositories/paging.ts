/**
 * Bounds for reads over lists that grow with the installation. The RDS Data API answers at most 1 MiB per call
 * and takes at most 65,536 characters of SQL (core/row-limits.ts), so a read over every definition, every schedule
 * or every id in a list is split: IN lists into chunks of IN_LIST_MAX ids, and result sets into pages whose
 * largest possible rows still add up to less than RESPONSE_BUDGET_BYTES.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';

/** Ids per IN list: at 17 digits and a separator each, about 10,000 characters of SQL, far under 65,536. */
export const IN_LIST_MAX = 500;

/** What one paged read may return, with room under the Data API's 1 MiB for the JSON around the values. */
export const RESPONSE_BUDGET_BYTES = 512 * 1024;

/**
 * Rows of a list page (tags, schedules, admins) when each row is at most a few hundred bytes: 1,000 rows of
 * at most 520 bytes (a 100-character tag of 4-byte characters, two ids and the JSON field names) stay within
 * RESPONSE_BUDGET_BYTES.
 */
export const LIST_PAGE_ROWS = 1000;

/** Splits a list into consecutive chunks of at most `size` items. */
export function chunked<T>(items: readonly T[], size: number = IN_LIST_MAX): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `read` for each chunk of ids, one after the other, and concatenates the results. */
export async function readInChunks<I, R>(ids: readonly I[], read: (chunk: I[]) => Promise<readonly R[]>, size: number = IN_LIST_MAX): Promise<R[]> {
  const out: R[] = [];
  for (const chunk of chunked(ids, size)) out.push(...(await read(chunk)));
  return out;
}

/**
 * Groups consecutive items into chunks whose summed `bytes` stay within `budget` and whose length stays within
 * `maxItems`; an item wider than the budget gets a chunk of its own.
 */
export function chunkByBytes<T>(items: readonly T[], bytes: (item: T) => number, budget: number, maxItems: number = IN_LIST_MAX): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let sum = 0;
  for (const item of items) {
    const size = bytes(item);
    if (current.length > 0 && (sum + size > budget || current.length >= maxItems)) {
      out.push(current);
      current = [];
      sum = 0;
    }
    current.push(item);
    sum += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Bytes a row holds besides its wide text columns, at most (ids, times, short strings, the JSON around them). */
export const NARROW_ROW_BYTES = 2 * 1024;

/** Ids and widths read per statement of a width-first scan (two numbers a row). */
export const WIDTH_PAGE_ROWS = 2000;

/**
 * The summed length of a row's wide text columns: bytes on MySQL and the Data API (where the limits are), characters
 * on SQLite (which has none). Column names are trusted identifiers from this folder, never user input.
 */
export function widthOf(...columns: readonly string[]): RawBuilder<number | string | null> {
  return sql<number | string | null>`${sql.join(columns.map((c) => sql`coalesce(length(${sql.ref(c)}), 0)`), sql` + `)}`;
}

/** A row's id and how many bytes reading it may cost. */
export interface RowWidth {
  id: number;
  bytes: number;
}

/** Maps `select id, <widthOf> as wide` rows to widths, adding the narrow columns' allowance. */
export function rowWidths(rows: readonly { id: number | string | bigint; wide: number | string | null }[]): RowWidth[] {
  return rows.map((row) => ({ id: Number(row.id), bytes: Number(row.wide ?? 0) + NARROW_ROW_BYTES }));
}

/**
 * Every width a keyset scan yields: `page(afterId, limit)` selects `id` and `wide` of the matching rows with ids
 * above afterId, ordered by id, at most `limit`; pages are read until one comes back short.
 */
export async function scanWidths(
  page: (afterId: number, limit: number) => Promise<readonly { id: number | string | bigint; wide: number | string | null }[]>,
): Promise<RowWidth[]> {
  const out: RowWidth[] = [];
  let afterId = 0;
  for (;;) {
    const rows = rowWidths(await page(afterId, WIDTH_PAGE_ROWS));
    out.push(...rows);
    const last = rows[rows.length - 1];
    if (rows.length < WIDTH_PAGE_ROWS || !last) return out;
    afterId = last.id;
  }
}

/**
 * Reads the rows of `widths` with `read(ids)` in chunks whose widths add up to at most RESPONSE_BUDGET_BYTES (and
 * IN lists of at most IN_LIST_MAX ids), and returns them in the order of `widths`; rows that vanished meanwhile are
 * left out.
 */
export async function readByWidth<R extends { id: number | string | bigint }>(
  widths: readonly RowWidth[],
  read: (ids: number[]) => Promise<readonly R[]>,
): Promise<R[]> {
  const byId = new Map<number, R>();
  for (const chunk of chunkByBytes(widths, (w) => w.bytes, RESPONSE_BUDGET_BYTES)) {
    for (const row of await read(chunk.map((w) => w.id))) byId.set(Number(row.id), row);
  }
  return widths.flatMap((w) => {
    const row = byId.get(w.id);
    return row === undefined ? [] : [row];
  });
}

/** The wide columns of each table that holds user text, for widthOf. */
export const TOKEN_WIDTH = widthOf('script', 'context', 'message');
export const EXECUTION_WIDTH = widthOf('shell', 'env', 'output_head', 'output_tail');
export const INSTANCE_WIDTH = widthOf('script', 'env');
export const DEFINITION_WIDTH = widthOf('description', 'script');
export const EVENT_WIDTH = widthOf('message');
