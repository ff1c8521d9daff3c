/**
 * Cuts the rows written before the byte budgets of core/row-limits.ts down to them, so that no existing row is
 * wider than the Data API's 64 KB per row of a result set (a wider one cannot be read at all on Aurora): output
 * excerpts of up to 32 KiB each, log lines and event messages holding them, and descriptions of up to 65,536
 * characters. Statements only (no row is read), so it runs over the Data API however wide the rows are.
 *
 * Characters are cut, four bytes' worth at most each, because SQL cannot cut on a UTF-8 boundary portably: the
 * result is within the byte budget whatever the text. Scripts are left whole: cutting one would change what runs.
 */
import { sql } from 'kysely';
import type { Kysely, Migration, RawBuilder } from 'kysely';
import { isSqlite } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

const KIB = 1024;
/** The most bytes one character takes in UTF-8. */
const MAX_CHAR_BYTES = 4;
/** Fixed here, not imported: a migration must not change when the code's limits change later. */
const MARKER = '\n… (truncated to fit the database row) …';
const MARKER_BYTES = Buffer.byteLength(MARKER, 'utf8');

interface Cut {
  table: string;
  column: string;
  maxBytes: number;
  /** Keep the end (a tail) rather than the start. */
  keepEnd?: boolean;
  /** Append MARKER (excerpts have their own elision mark between head and tail). */
  marked?: boolean;
}

const CUTS: readonly Cut[] = [
  { table: 'executions', column: 'output_head', maxBytes: 8 * KIB },
  { table: 'executions', column: 'output_tail', maxBytes: 8 * KIB, keepEnd: true },
  { table: 'instance_logs', column: 'message', maxBytes: 40 * KIB, marked: true },
  { table: 'events', column: 'message', maxBytes: 16 * KIB, marked: true },
  { table: 'job_definitions', column: 'description', maxBytes: 16 * KIB, marked: true },
];

async function up(db: AnyKysely): Promise<void> {
  const sqlite = isSqlite(db);
  const bytesOf = (column: string): RawBuilder<number> =>
    sqlite ? sql<number>`length(cast(${sql.ref(column)} as blob))` : sql<number>`length(${sql.ref(column)})`;
  for (const cut of CUTS) {
    const room = cut.marked ? cut.maxBytes - MARKER_BYTES : cut.maxBytes;
    const chars = Math.floor(room / MAX_CHAR_BYTES);
    let value: RawBuilder<string>;
    if (cut.keepEnd) value = sql<string>`substr(${sql.ref(cut.column)}, ${-chars})`;
    else if (!cut.marked) value = sql<string>`substr(${sql.ref(cut.column)}, 1, ${chars})`;
    else if (sqlite) value = sql<string>`substr(${sql.ref(cut.column)}, 1, ${chars}) || ${MARKER}`;
    else value = sql<string>`concat(substr(${sql.ref(cut.column)}, 1, ${chars}), ${MARKER})`;
    await db
      .updateTable(cut.table)
      .set({ [cut.column]: value })
      .where(bytesOf(cut.column), '>', cut.maxBytes)
      .execute();
  }
}

/** Nothing to undo: the cut text is gone. */
async function down(): Promise<void> {}

/** Cuts pre-existing wide rows to the byte budgets. */
export const rowWidths: Migration = { up, down };
