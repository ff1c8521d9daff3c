/**
 * Server-side console sessions, so sign-out ends a session for good (a copied cookie stops working), and failed API
 * logins counted per client name and per address, shared by every process (API Lambdas run in many containers at
 * once, so an in-memory count would limit nothing).
 */
import type { CreateTableBuilder, Kysely, Migration } from 'kysely';
import { columnTypes, tableCreator } from './column-types';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

const TABLES = ['console_sessions', 'login_failures'] as const;
/** Hex SHA-256 of the session's random id (the cookie carries the id, the table only its digest). */
const DIGEST_TYPE = 'varchar(64)';
/** RFC 5321's longest address. */
const EMAIL_TYPE = 'varchar(320)';
/** `client:<name>` (names are at most 100 characters) or `address:<IPv6 text>`. */
const LIMIT_KEY_TYPE = 'varchar(160)';

async function up(db: AnyKysely): Promise<void> {
  const t = columnTypes(db);
  const table: (name: (typeof TABLES)[number]) => CreateTableBuilder<string, never> = tableCreator(db);

  await table('console_sessions')
    .addColumn('id', DIGEST_TYPE, (c) => c.primaryKey())
    .addColumn('email', EMAIL_TYPE, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('expires_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('console_sessions_email_idx').on('console_sessions').column('email').execute();
  await db.schema.createIndex('console_sessions_expires_idx').on('console_sessions').column('expires_at').execute();

  await table('login_failures')
    .addColumn('limit_key', LIMIT_KEY_TYPE, (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_started_at', t.time, (c) => c.notNull())
    .addColumn('blocked_until', t.time)
    .execute();
}

async function down(db: AnyKysely): Promise<void> {
  for (const name of [...TABLES].reverse()) await db.schema.dropTable(name).ifExists().execute();
}

/** Adds console_sessions and login_failures. */
export const sessionsAndLoginLimits: Migration = { up, down };
