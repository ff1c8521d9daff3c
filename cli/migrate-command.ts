/** `kuroko migrate`: brings a database to the latest schema. Harmless when run twice or by two hosts at once. */
import { randomBytes } from 'node:crypto';
import { createDatabase, parseDatabaseUrl, type DatabaseHandle } from '../db/connection';
import { DATABASE_ROLE, DEFAULT_DATABASE_USERS, databaseUserExists, ensureDatabaseUser, type DatabaseRole } from '../db/database-users';
import { migrateToLatest } from '../db/migrator';
import { ConfigError } from '../core/errors';
import { lastValue, parseCliArgs } from './cli-args';
import { EXIT_CODE, type CliIo, type SubCommand } from './sub-command';

const USAGE =
  'usage: kuroko migrate --database-url URL   (or KUROKO_DATABASE_URL)\n' +
  '       kuroko migrate --database-url URL --create-users [--agent-user NAME] [--runtime-user NAME]\n';

const HELP = `${USAGE}
--create-users (MySQL/MariaDB, with an account that may CREATE USER and GRANT) also creates or repairs two users:
  ${DEFAULT_DATABASE_USERS.agent} (--agent-user)      for \`kuroko agent\`: only the tables the claim loop touches, no DDL
  ${DEFAULT_DATABASE_USERS.runtime} (--runtime-user)  for \`kuroko server\`: rows of every table, no DDL
A new user gets a generated password (or KUROKO_AGENT_DB_PASSWORD / KUROKO_RUNTIME_DB_PASSWORD), printed once with
its URL; an existing user keeps its password unless one of those variables is set. Grants beyond the role are revoked.
`;

/** Variables that set the passwords of the users `--create-users` makes. */
export const USER_PASSWORD_ENV: Readonly<Record<DatabaseRole, string>> = {
  agent: 'KUROKO_AGENT_DB_PASSWORD',
  runtime: 'KUROKO_RUNTIME_DB_PASSWORD',
};
const GENERATED_PASSWORD_BYTES = 24;

/** Runs the migrations and prints what was applied. */
export async function runMigrate(args: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // --create-users is a flag: give it a value so the shared reader accepts it.
  const flagged = args.map((arg) => (arg === '--create-users' ? '--create-users=yes' : arg));
  const parsed = parseCliArgs(flagged, ['--database-url', '--create-users', '--agent-user', '--runtime-user']);
  if (parsed.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  const url = lastValue(parsed, '--database-url') ?? env.KUROKO_DATABASE_URL;
  if (!url) parsed.problems.push('a database URL is required: --database-url or KUROKO_DATABASE_URL');
  const createUsers = lastValue(parsed, '--create-users') !== undefined;
  if (!createUsers && (lastValue(parsed, '--agent-user') ?? lastValue(parsed, '--runtime-user')) !== undefined) {
    parsed.problems.push('--agent-user and --runtime-user go with --create-users');
  }
  if (parsed.problems.length > 0) {
    io.stderr(`kuroko migrate: ${parsed.problems.join('; ')}\n${USAGE}`);
    return EXIT_CODE.usage;
  }
  let handle: DatabaseHandle;
  let database: string;
  try {
    const target = parseDatabaseUrl(url!);
    if (createUsers && target.dialect === 'sqlite') throw new ConfigError(['--create-users needs MySQL or MariaDB: a SQLite file has no users']);
    database = target.dialect === 'sqlite' ? '' : target.database;
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
    if (!createUsers) return EXIT_CODE.ok;
    const names: Record<DatabaseRole, string> = {
      agent: lastValue(parsed, '--agent-user') ?? DEFAULT_DATABASE_USERS.agent,
      runtime: lastValue(parsed, '--runtime-user') ?? DEFAULT_DATABASE_USERS.runtime,
    };
    for (const role of [DATABASE_ROLE.agent, DATABASE_ROLE.runtime]) {
      const username = names[role];
      const given = env[USER_PASSWORD_ENV[role]] || undefined;
      const exists = await databaseUserExists(handle.db, username);
      const password = given ?? (exists ? undefined : randomBytes(GENERATED_PASSWORD_BYTES).toString('base64url'));
      const result = await ensureDatabaseUser(handle.db, database, { role, username, password });
      const rights = `${result.granted} grant(s) added, ${result.revoked} revoked`;
      if (password === undefined) {
        io.stdout(`kuroko migrate: ${role} user ${username} checked (${rights}); its password is unchanged\n`);
      } else {
        io.stdout(`kuroko migrate: ${role} user ${username} ${result.created ? 'created' : 'updated'} (${rights}); password: ${password}\n`);
        if (given === undefined) io.stdout(`  (shown once: keep it, e.g. in KUROKO_DATABASE_URL=mysql://${username}:${password}@<host>:<port>/${database})\n`);
      }
    }
    return EXIT_CODE.ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`kuroko migrate: ${error.message}\n`);
      return EXIT_CODE.problems;
    }
    throw error;
  } finally {
    await handle.close();
  }
}

export const migrateCommand: SubCommand = { run: (args, io) => runMigrate(args, io) };
