/**
 * The launch request an Idempotency-Key was first used with, as a SHA-256 of its env and script, so a repeat with
 * a different request is refused instead of answered with an unrelated instance. Rows launched before this column
 * have none and keep the old behaviour (any repeat returns them).
 */
import type { Kysely, Migration } from 'kysely';

// Kysely's migration contract hands migrations an untyped Kysely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKysely = Kysely<any>;

/** Hex SHA-256. */
const FINGERPRINT_TYPE = 'varchar(64)';

async function up(db: AnyKysely): Promise<void> {
  await db.schema.alterTable('job_instances').addColumn('idempotency_fingerprint', FINGERPRINT_TYPE).execute();
}

async function down(db: AnyKysely): Promise<void> {
  await db.schema.alterTable('job_instances').dropColumn('idempotency_fingerprint').execute();
}

/** Adds job_instances.idempotency_fingerprint. */
export const idempotencyFingerprint: Migration = { up, down };
