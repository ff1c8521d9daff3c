/**
 * What an import from Kuroko2 (`kuroko import kuroko2`) keeps that our schema had no place for:
 * - job_definitions.hipchat_room / hipchat_additional_text: Kuroko2's HipChat settings, kept as they were
 *   (`hipchat_notify_finished` is already `notify_all`). Kuroko2's column sizes and defaults.
 * - memory_expectancies: Kuroko2's "estimated memory consumption" of a definition, in KB. The monitor takes it as
 *   one more peak of the definition's history, so a definition's memory alerts continue from what Kuroko2 knew.
 * - kuroko2_imports: which of our rows came from which Kuroko2 row, so a second import updates what it wrote
 *   before (and only that) and creates nothing twice; a definition id already used by a definition that was not
 *   imported is a collision, refused unless --merge.
 */
import type { Kysely, Migration } from 'kysely';
import { columnTypes, tableCreator } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

/** Kuroko2's `t.string limit: 180`. */
const KUROKO2_STRING = 'varchar(180)';
const KIND_TYPE = 'varchar(32)';

async function up(db: AnyKysely): Promise<void> {
  const t = columnTypes(db);
  const table = tableCreator(db);
  await db.schema
    .alterTable('job_definitions')
    .addColumn('hipchat_room', KUROKO2_STRING, (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema.alterTable('job_definitions').addColumn('hipchat_additional_text', KUROKO2_STRING).execute();

  await table('memory_expectancies')
    .addColumn('job_definition_id', t.id, (c) => c.primaryKey())
    .addColumn('expected_kb', t.id, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .execute();

  await table('kuroko2_imports')
    .addColumn('kind', KIND_TYPE, (c) => c.notNull())
    .addColumn('source_id', t.id, (c) => c.notNull())
    .addColumn('target_id', t.id, (c) => c.notNull())
    .addColumn('imported_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('kuroko2_imports_pkey', ['kind', 'source_id'])
    .execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.dropTable('kuroko2_imports').ifExists().execute();
  await db.schema.dropTable('memory_expectancies').ifExists().execute();
  await db.schema.alterTable('job_definitions').dropColumn('hipchat_additional_text').execute();
  await db.schema.alterTable('job_definitions').dropColumn('hipchat_room').execute();
}

/** Adds the HipChat columns, memory expectancies and the import provenance of Kuroko2 rows. */
export const kuroko2Import: Migration = { up, down };
