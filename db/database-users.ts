/**
 * The MySQL users of a deployment besides the master (invariant 7, issue 13): agents reach the database as an
 * `agent` user granted only what the claim loop touches, the engine (Lambdas, `kuroko server`) as a `runtime` user
 * with data rights and no DDL, and only the migrator uses the master.
 *
 * `ensureDatabaseUser` creates or updates a user and makes its grants exactly the role's: it grants what is missing
 * and revokes what `SHOW GRANTS` lists beyond the role, so running it twice (every deploy) changes nothing, a role
 * that shrinks loses its old rights, and a running agent never sees its rights missing in between. MySQL 8 / Aurora
 * MySQL 3 and MariaDB, over mysql2 or the Data API.
 */
import { sql, type Kysely } from 'kysely';
import { ConfigError } from '../core/errors';
import { DATABASE_ROLE, type DatabaseRole } from './database-user-names';
import type { Database } from './schema';

export { DATABASE_ROLE, DEFAULT_DATABASE_USERS, type DatabaseRole } from './database-user-names';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';
/** Kysely's record of applied migrations: read by the start-up check that refuses a schema newer than the build. */
const MIGRATION_TABLE = 'kysely_migration';
type TableName = (keyof Database & string) | typeof MIGRATION_TABLE;

/**
 * Every table the agent touches and how (agent/agent.ts through ExecutionQueueRepository, WorkerRepository and the
 * id generator): claims and fenced updates of executions, their history for leftovers, kill requests, memory
 * samples, its own worker row (deleted when it stops), and id blocks; and it may read which migrations were applied.
 * Nothing else: no definitions, tokens, API clients, console users or sessions, and no DDL.
 */
export const AGENT_TABLE_GRANTS: Readonly<Partial<Record<TableName, readonly Privilege[]>>> = {
  executions: ['SELECT', 'UPDATE'],
  execution_histories: ['SELECT'],
  process_signals: ['SELECT', 'UPDATE'],
  memory_samples: ['INSERT'],
  workers: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  id_blocks: ['SELECT', 'UPDATE'],
  [MIGRATION_TABLE]: ['SELECT'],
};

/** The runtime user's rights on the whole schema: rows only, never tables (no CREATE, ALTER, DROP, INDEX ...). */
export const RUNTIME_DATABASE_GRANTS: readonly Privilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

export interface DatabaseUser {
  role: DatabaseRole;
  username: string;
  /** Undefined keeps the password of an existing user (`kuroko migrate --create-users` run again). */
  password: string | undefined;
}

/** One GRANT line: privileges on one object (`db`.* or `db`.`table`). */
interface Grant {
  object: string;
  privileges: readonly string[];
}

const USER_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;
const DATABASE_NAME = /^[A-Za-z0-9_]{1,64}$/;
/** Printable ASCII without quotes or backslash, so the literal never depends on sql_mode's backslash handling. */
const PASSWORD = /^[\x21\x23-\x26\x28-\x5b\x5d-\x7e]{16,128}$/;
const MIN_PASSWORD_LENGTH = 16;
/** Any host: the Data API's connections come from inside AWS, from addresses nobody can list. */
const ANY_HOST = '%';

/** Checks names and password before they are spliced into statements (CREATE USER and GRANT take no parameters). */
function check(databaseName: string, user: DatabaseUser): void {
  const problems: string[] = [];
  if (!DATABASE_NAME.test(databaseName)) problems.push(`database name ${JSON.stringify(databaseName)} must match ${DATABASE_NAME}`);
  if (!USER_NAME.test(user.username)) problems.push(`user name ${JSON.stringify(user.username)} must match ${USER_NAME}`);
  if (user.password !== undefined && !PASSWORD.test(user.password)) {
    problems.push(`the password of ${user.username} must be ${MIN_PASSWORD_LENGTH} to 128 printable characters without quotes, backslash or spaces`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

const quoteId = (name: string): string => `\`${name}\``;
const account = (username: string): string => `'${username}'@'${ANY_HOST}'`;
/**
 * At the database level `_` and `%` are wildcards in GRANT: `kuroko_a`.* would also cover `kurokoXa`. Escaped, the
 * grant covers this one database only.
 */
const databaseLevel = (databaseName: string): string => `${quoteId(databaseName.replace(/[_%]/g, (c) => `\\${c}`))}.*`;

/** The grants `role` should hold on `databaseName`, one per object. */
export function grantsFor(role: DatabaseRole, databaseName: string): Grant[] {
  if (role === DATABASE_ROLE.runtime) return [{ object: databaseLevel(databaseName), privileges: RUNTIME_DATABASE_GRANTS }];
  return Object.entries(AGENT_TABLE_GRANTS).map(([table, privileges]) => ({
    object: `${quoteId(databaseName)}.${quoteId(table)}`,
    privileges: privileges ?? [],
  }));
}

/**
 * The statements that create `user` with exactly its role's rights on a server where it does not exist yet
 * (printed by `kuroko migrate --create-users --print-sql`; ensureDatabaseUser runs the same and also repairs).
 */
export function createUserStatements(databaseName: string, user: DatabaseUser & { password: string }): string[] {
  check(databaseName, user);
  return [
    `CREATE USER IF NOT EXISTS ${account(user.username)} IDENTIFIED BY '${user.password}'`,
    `ALTER USER ${account(user.username)} IDENTIFIED BY '${user.password}'`,
    ...grantsFor(user.role, databaseName).map((g) => `GRANT ${g.privileges.join(', ')} ON ${g.object} TO ${account(user.username)}`),
  ];
}

/** `kuroko_x`.* and `kuroko\_x`.* name the same object for our purpose; backticks and case aside too. */
const normaliseObject = (object: string): string => object.replace(/\\([_%])/g, '$1').replace(/`/g, '').toLowerCase();

/** Parses `SHOW GRANTS` lines into object and privileges; lines that grant roles or columns are left out. */
export function parseShowGrants(lines: readonly string[]): Grant[] {
  const grants: Grant[] = [];
  for (const line of lines) {
    const match = /^GRANT (.+?) ON (?:TABLE )?(\S+) TO /i.exec(line);
    if (match?.[1] === undefined || match[2] === undefined || match[1].includes('(')) continue;
    const privileges = match[1].split(',').map((p) => p.trim().toUpperCase()).filter((p) => p !== 'USAGE');
    if (privileges.length > 0) grants.push({ object: match[2], privileges });
  }
  return grants;
}

export interface EnsureUserResult {
  created: boolean;
  /** Grant statements run (missing rights), and revokes (rights beyond the role). */
  granted: number;
  revoked: number;
}

/**
 * Creates `user` if absent, sets its password, grants what its role needs and revokes anything else it holds.
 * Needs a connection with CREATE USER and GRANT OPTION (the master). Idempotent.
 */
export async function ensureDatabaseUser(db: Kysely<Database>, databaseName: string, user: DatabaseUser): Promise<EnsureUserResult> {
  check(databaseName, user);
  const run = (statement: string) => sql.raw(statement).execute(db);
  const existing = await showGrants(db, user.username);
  if (existing === undefined && user.password === undefined) throw new ConfigError([`database user ${user.username} does not exist and no password was given`]);
  if (existing === undefined) await run(`CREATE USER IF NOT EXISTS ${account(user.username)} IDENTIFIED BY '${user.password}'`);
  // Every run: a rotated secret takes effect at the next deploy.
  if (user.password !== undefined) await run(`ALTER USER ${account(user.username)} IDENTIFIED BY '${user.password}'`);

  const wanted = grantsFor(user.role, databaseName);
  const allowedOn = (object: string): Set<string> =>
    new Set(wanted.filter((w) => normaliseObject(w.object) === normaliseObject(object)).flatMap((w) => w.privileges));
  // Excess rights go first: a revoke never touches a right the role keeps (ALL PRIVILEGES aside, which holds them
  // all and is regranted below), so a running agent never misses one.
  let revoked = 0;
  const kept: Grant[] = [];
  for (const grant of existing ?? []) {
    const allowed = allowedOn(grant.object);
    const extra = grant.privileges.filter((p) => !allowed.has(p));
    kept.push({ object: grant.object, privileges: grant.privileges.filter((p) => allowed.has(p)) });
    if (extra.length === 0) continue;
    await run(`REVOKE ${extra.join(', ')} ON ${grant.object} FROM ${account(user.username)}`);
    revoked++;
  }
  let granted = 0;
  for (const grant of wanted) {
    const has = new Set(kept.filter((g) => normaliseObject(g.object) === normaliseObject(grant.object)).flatMap((g) => g.privileges));
    if (grant.privileges.every((p) => has.has(p))) continue;
    await run(`GRANT ${grant.privileges.join(', ')} ON ${grant.object} TO ${account(user.username)}`);
    granted++;
  }
  return { created: existing === undefined, granted, revoked };
}

/** Whether the user exists (on any host pattern we create: '%'). */
export async function databaseUserExists(db: Kysely<Database>, username: string): Promise<boolean> {
  if (!USER_NAME.test(username)) throw new ConfigError([`user name ${JSON.stringify(username)} must match ${USER_NAME}`]);
  return (await showGrants(db, username)) !== undefined;
}

/** The user's grants, or undefined when there is no such user (error 1141, "no such grant defined"). */
async function showGrants(db: Kysely<Database>, username: string): Promise<Grant[] | undefined> {
  try {
    const result = await sql.raw<Record<string, string>>(`SHOW GRANTS FOR ${account(username)}`).execute(db);
    return parseShowGrants(result.rows.map((row) => String(Object.values(row)[0] ?? '')));
  } catch (error) {
    if (isNoSuchGrant(error)) return undefined;
    throw error;
  }
}

/** mysql2 carries errno 1141; the Data API words it "Database error code: 1141. Message: ...". */
function isNoSuchGrant(error: unknown): boolean {
  const errno = (error as { errno?: unknown }).errno;
  if (errno === NO_SUCH_GRANT) return true;
  const message = error instanceof Error ? error.message : String(error);
  return message.includes(`${NO_SUCH_GRANT}`) && /no such grant|There is no such grant/i.test(message);
}
const NO_SUCH_GRANT = 1141;
