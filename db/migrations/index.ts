/**
 * Every migration, by name. Names sort in run order; append new ones, never edit or rename an applied one.
 * A static list (not a folder scan) so the migrator Lambda and the agent bundle carry the migrations with them.
 */
import type { Migration } from 'kysely';
import { initialSchema } from './0001-initial-schema';
import { consoleUsers } from './0002-console-users';
import { idempotencyFingerprint } from './0003-idempotency-fingerprint';
import { rowWidths } from './0004-row-widths';
import { sessionsAndLoginLimits } from './0005-sessions-and-login-limits';
import { kuroko2Import } from './0007-kuroko2-import';
import { retention } from './0008-retention';
import { throughput } from './0009-throughput';
import { leases } from './0010-leases';
import { historyExecutionKey } from './0011-history-execution-key';

export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial_schema': initialSchema,
  '0002_console_users': consoleUsers,
  '0003_idempotency_fingerprint': idempotencyFingerprint,
  '0004_row_widths': rowWidths,
  '0005_sessions_and_login_limits': sessionsAndLoginLimits,
  '0007_kuroko2_import': kuroko2Import,
  '0008_retention': retention,
  '0009_throughput': throughput,
  '0010_leases': leases,
  '0011_history_execution_key': historyExecutionKey,
});
