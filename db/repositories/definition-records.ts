/**
 * Reads a definition's lists (tags, cron schedules, suspend schedules) for rows already selected, within the Data
 * API's limits: chunks of IN_LIST_MAX ids and pages of LIST_PAGE_ROWS rows.
 */
import type { Kysely, Transaction } from 'kysely';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import { fromDbInt } from '../column-codec';
import type { Database, JobDefinitionRow } from '../schema';
import { LIST_PAGE_ROWS, chunked } from './paging';
import { toDefinition } from './row-mappers';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Completes definition rows into records: their tags and schedules, one statement per list, the three at once, in
 * chunks of IN_LIST_MAX ids and pages of LIST_PAGE_ROWS rows (a definition may hold 50 tags and 100 schedules). For
 * readers that select the rows themselves, such as the console's starred definitions, which joins its stars in the
 * same statement.
 */
export async function definitionRecords(db: Db, rows: readonly JobDefinitionRow[]): Promise<DefinitionRecord[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => fromDbInt(r.id));
  const tagsOf = new Map<number, string[]>();
  const cronsOf = new Map<number, string[]>();
  const suspendsOf = new Map<number, string[]>();
  for (const chunk of chunked(ids)) {
    const [tags, crons, suspends] = await Promise.all([
      readTags(db, chunk),
      readSchedules(db, 'job_schedules', chunk),
      readSchedules(db, 'job_suspend_schedules', chunk),
    ]);
    for (const [id, list] of tags) tagsOf.set(id, list);
    for (const [id, list] of crons) cronsOf.set(id, list);
    for (const [id, list] of suspends) suspendsOf.set(id, list);
  }
  return rows.map((row) => {
    const definition = toDefinition(row);
    return {
      ...definition,
      version: Number(row.version),
      tags: tagsOf.get(definition.id) ?? [],
      crons: cronsOf.get(definition.id) ?? [],
      suspendCrons: suspendsOf.get(definition.id) ?? [],
    };
  });
}

function append(map: Map<number, string[]>, key: number, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The tag names of the definitions (at most IN_LIST_MAX), each list sorted by name, read in pages. */
async function readTags(db: Db, definitionIds: readonly number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  let after: { definitionId: number; tagId: number } | undefined;
  for (;;) {
    const from = after;
    let query = db
      .selectFrom('job_definition_tags')
      .innerJoin('tags', 'tags.id', 'job_definition_tags.tag_id')
      .select(['job_definition_tags.job_definition_id as definitionId', 'job_definition_tags.tag_id as tagId', 'tags.name as name'])
      .where('job_definition_tags.job_definition_id', 'in', [...definitionIds])
      .orderBy('job_definition_tags.job_definition_id')
      .orderBy('job_definition_tags.tag_id')
      .limit(LIST_PAGE_ROWS);
    if (from) {
      query = query.where((eb) =>
        eb.or([
          eb('job_definition_tags.job_definition_id', '>', from.definitionId),
          eb.and([eb('job_definition_tags.job_definition_id', '=', from.definitionId), eb('job_definition_tags.tag_id', '>', from.tagId)]),
        ]),
      );
    }
    const rows = await query.execute();
    for (const row of rows) append(out, fromDbInt(row.definitionId), row.name);
    const last = rows[rows.length - 1];
    if (rows.length < LIST_PAGE_ROWS || !last) break;
    after = { definitionId: fromDbInt(last.definitionId), tagId: fromDbInt(last.tagId) };
  }
  // Binary order, as the utf8mb4_bin collation sorts them.
  for (const list of out.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out;
}

/**
 * The cron texts of the definitions (at most IN_LIST_MAX) in creation order, read in pages. A definition's schedules
 * are replaced together, so their ids follow the order they were given in.
 */
export async function readSchedules(
  db: Db,
  table: 'job_schedules' | 'job_suspend_schedules',
  definitionIds: readonly number[],
): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  let afterId = 0;
  for (;;) {
    const rows = await db
      .selectFrom(table)
      .select(['id', 'job_definition_id as definitionId', 'cron'])
      .where('job_definition_id', 'in', [...definitionIds])
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(LIST_PAGE_ROWS)
      .execute();
    for (const row of rows) append(out, fromDbInt(row.definitionId), row.cron);
    const last = rows[rows.length - 1];
    if (rows.length < LIST_PAGE_ROWS || !last) break;
    afterId = fromDbInt(last.id);
  }
  return out;
}
