/**
 * Every migration, by name. Names sort in run order; append new ones, never edit or rename an applied one.
 * A static list (not a folder scan) so the migrator Lambda and the agent bundle carry the migrations with them.
 */
import type { Migration } from 'kysely';
import { initialSchema } from './0001-initial-schema';
import { consoleUsers } from './0002-console-users';
import { idempotencyFingerprint } from './0003-idempotency-fingerprint';
import { rowWidths } from './0004-row-widths';

export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial_schema': initialSchema,
  '0002_console_users': consoleUsers,
  '0003_idempotency_fingerprint': idempotencyFingerprint,
  '0004_row_widths': rowWidths,
});
