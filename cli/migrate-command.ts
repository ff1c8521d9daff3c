/** `kuroko migrate`: brings a database to the latest schema. Harmless when run twice or by two hosts at once. */
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import { ConfigError } from '../core/errors';
import { lastValue, parseCliArgs } from './cli-args';
import { EXIT_CODE, type CliIo, type SubCommand } from './sub-command';

const USAGE = 'usage: kuroko migrate --database-url URL   (or KUROKO_DATABASE_URL)\n';

/** Runs the migrations and prints what was applied. */
export async function runMigrate(args: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCliArgs(args, ['--database-url']);
  if (parsed.help) {
    io.stdout(USAGE);
    return EXIT_CODE.ok;
  }
  const url = lastValue(parsed, '--database-url') ?? env.KUROKO_DATABASE_URL;
  if (!url) parsed.problems.push('a database URL is required: --database-url or KUROKO_DATABASE_URL');
  if (parsed.problems.length > 0) {
    io.stderr(`kuroko migrate: ${parsed.problems.join('; ')}\n${USAGE}`);
    return EXIT_CODE.usage;
  }
  let handle;
  try {
    handle = createDatabase(url!);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`kuroko migrate: ${error.message}\n`);
      return EXIT_CODE.usage;
    }
    throw error;
  }
  try {
    const run = await migrateToLatest(handle.db);
    io.stdout(run.applied.length === 0 ? 'kuroko migrate: the schema is up to date\n' : `kuroko migrate: applied ${run.applied.join(', ')}\n`);
    return EXIT_CODE.ok;
  } finally {
    await handle.close();
  }
}

export const migrateCommand: SubCommand = { run: (args, io) => runMigrate(args, io) };
