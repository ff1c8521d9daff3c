/**
 * Runs the migrations against a database URL in a process of its own and prints the outcome as JSON; tests start
 * several at once to play migrators in different processes (`node --import tsx test/helpers/run-migrations.ts URL`).
 */
import { createDatabase } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';

const url = process.argv[2];
if (!url) throw new Error('usage: run-migrations.ts <database-url>');
const handle = createDatabase(url);
try {
  process.stdout.write(JSON.stringify(await migrateToLatest(handle.db)));
} finally {
  await handle.close();
}
