/**
 * The console's people: who signed in, which definitions each person administers, and their stars. Keyed by
 * lower-cased email, so a person can be made admin of a definition before signing in for the first time. Sessions
 * live in signed cookies, not here.
 */
import type { CreateTableBuilder, Kysely, Migration } from 'kysely';
import { columnTypes, tableCreator } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

const TABLES = ['console_users', 'definition_admins', 'definition_stars'] as const;
/** RFC 5321's longest address. */
const EMAIL_TYPE = 'varchar(320)';

async function up(db: AnyKysely): Promise<void> {
  const t = columnTypes(db);
  const table: (name: (typeof TABLES)[number]) => CreateTableBuilder<string, never> = tableCreator(db);

  await table('console_users')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('email', EMAIL_TYPE, (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('last_signed_in_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('console_users_email_key', ['email'])
    .execute();

  await table('definition_admins')
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('email', EMAIL_TYPE, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('definition_admins_pkey', ['job_definition_id', 'email'])
    .execute();
  await db.schema.createIndex('definition_admins_email_idx').on('definition_admins').column('email').execute();

  await table('definition_stars')
    .addColumn('email', EMAIL_TYPE, (c) => c.notNull())
    .addColumn('job_definition_id', t.id, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('definition_stars_pkey', ['email', 'job_definition_id'])
    .execute();
}

async function down(db: AnyKysely): Promise<void> {
  for (const name of [...TABLES].reverse()) await db.schema.dropTable(name).ifExists().execute();
}

/** Adds the console's users, definition admins and stars. */
export const consoleUsers: Migration = { up, down };
