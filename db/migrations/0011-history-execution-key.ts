/**
 * One history row per command (issue 18): a unique key on execution_histories.execution_id, so archiving a finished
 * command is idempotent. On the Data API the processor writes a step's history rows beside its transaction rather
 * than inside it (one serial call fewer on the way from a command's exit to the next start), before the commit that
 * deletes the command: a transaction that then rolls back (a lost race, a deadlock) leaves a row that the archive
 * which follows finds already written, instead of writing a second one.
 *
 * Rows of one command written twice before this key existed (none is expected) are merged first, the oldest kept.
 */
import { sql, type Kysely, type Migration } from 'kysely';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

async function up(db: AnyKysely): Promise<void> {
  // The derived table lets MySQL delete from the table it reads (it materializes the ids first).
  await sql`delete from execution_histories where id in (
    select id from (
      select h.id from execution_histories h
      join execution_histories older on older.execution_id = h.execution_id and older.id < h.id
    ) as duplicated
  )`.execute(db);
  await db.schema.createIndex('execution_histories_execution_key').on('execution_histories').column('execution_id').unique().execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.dropIndex('execution_histories_execution_key').on('execution_histories').execute();
}

export const historyExecutionKey: Migration = { up, down };
