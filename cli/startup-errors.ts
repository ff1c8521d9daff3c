/**
 * Turns the failures a `kuroko` command can meet while starting (a port in use, a database that refuses us, a data
 * dir that cannot be written, a native module built for another Node.js, a schema from a newer build) into one or
 * two lines: what failed, and what to do about it. Errors arrive as drivers and Node throw them, often wrapped
 * (`database migration failed: ...` with the driver's error as its cause), so every mapping looks down the cause
 * chain. Anything not recognised here is an unexpected error: its one line says so and where to report it.
 */
import { ConfigError, errorMessage } from '../core/errors';
import { SchemaNewerError } from '../db/migrator';

/** What the person running the command reads: what failed, then what to do. */
export interface FailureExplanation {
  /** One line: what failed. */
  readonly what: string;
  /** One line: what to do about it. */
  readonly fix: string;
}

/** What the failing command knows about its own options, to name them in a fix. */
export interface FailureContext {
  /** The sub-command's name (`dev`, `server`, `agent`...). */
  readonly command: string;
}

/** Where unexpected errors should be reported. */
export const REPORT_HINT = 'this is a bug in kuroko: please report it on the project\'s issue tracker with the output of the same command run with --debug';

const NATIVE_MODULE = 'better-sqlite3';
const REBUILD = `run \`npm rebuild ${NATIVE_MODULE}\` in the kuroko folder (npm 11 builds it only because package.json's allowScripts lists it)`;
const MAX_CAUSE_DEPTH = 8;

interface Coded {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  address?: unknown;
  port?: unknown;
  path?: unknown;
  hostname?: unknown;
  fatal?: unknown;
  sqlMessage?: unknown;
}

/** The error and every cause below it (and an AggregateError's members), outermost first. */
export function errorChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  const visit = (value: unknown, depth: number) => {
    if (value === undefined || value === null || depth > MAX_CAUSE_DEPTH || chain.includes(value)) return;
    chain.push(value);
    if (value instanceof AggregateError) for (const member of value.errors) visit(member, depth + 1);
    if (value instanceof Error) visit(value.cause, depth + 1);
  };
  visit(error, 0);
  return chain;
}

const fields = (value: unknown): Coded & { message: string } =>
  typeof value === 'object' && value !== null ? { ...(value as Coded), message: errorMessage(value) } : { message: String(value) };

const text = (value: unknown): string | undefined => (typeof value === 'string' || typeof value === 'number' ? String(value) : undefined);

function where(error: Coded): string {
  const address = text(error.address);
  const port = text(error.port);
  return address && port ? `${address.includes(':') ? `[${address}]` : address}:${port}` : (address ?? text(error.hostname) ?? 'the server');
}

/** The option that moves a command's files elsewhere. */
function dirOption(command: string): string {
  if (command === 'dev') return '--data-dir (or KUROKO_DATA_DIR)';
  if (command === 'server' || command === 'agent') return '--log-dir (or KUROKO_LOG_DIR)';
  return 'the matching option';
}

const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'a file is in the way of a directory',
  EISDIR: 'a directory is in the way of a file',
};

function explainOne(error: Coded & { message: string }, context: FailureContext): FailureExplanation | undefined {
  const code = text(error.code);
  const syscall = text(error.syscall);
  const message = error.message;

  if (syscall === 'listen' || (syscall === 'bind' && code !== undefined)) {
    const at = where(error);
    if (code === 'EADDRINUSE') {
      return { what: `port ${text(error.port) ?? '?'} is already in use (listening on ${at})`, fix: 'stop what holds it, or pick another port with --port N (or PORT=N)' };
    }
    if (code === 'EADDRNOTAVAIL') {
      return { what: `cannot listen on ${at}: that address does not belong to this machine`, fix: 'pick one of its addresses with --host (or KUROKO_HOST), e.g. 127.0.0.1 or 0.0.0.0 for all' };
    }
    if (code === 'EACCES') {
      return { what: `not allowed to listen on ${at}: ports below 1024 need privileges`, fix: 'pick a port from 1024 up with --port N (or PORT=N)' };
    }
  }

  // mysql2 marks connection-level failures `fatal`; the server's own refusals carry its error code.
  // MariaDB answers 1698 (NO_PASSWORD) rather than 1045 for a user it does not know at all.
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR') {
    const user = /for user '([^']*)'@'([^']*)'(?: \(using password: (YES|NO)\))?/.exec(message);
    const how = user?.[3] === undefined ? '' : user[3] === 'YES' ? ' with the password given' : ' without a password';
    return {
      what: `the database refused user ${user ? `'${user[1]}' connecting from ${user[2]}${how}` : 'of --database-url'} (wrong password, or no such user)`,
      fix: 'check the user and password in --database-url (or KUROKO_DATABASE_URL); a new user needs CREATE USER and GRANT ALL ON <database>.*',
    };
  }
  if (code === 'ER_DBACCESS_DENIED_ERROR') {
    const names = /for user '([^']*)'@'([^']*)' to database '([^']*)'/.exec(message);
    return {
      what: `the database refused access: ${text(error.sqlMessage) ?? message}`,
      fix: names ? `grant it: GRANT ALL ON \`${names[3]}\`.* TO '${names[1]}'@'${names[2]}';` : 'grant the user of --database-url all rights on its database',
    };
  }
  if (code === 'ER_BAD_DB_ERROR') {
    const name = /Unknown database '([^']*)'/.exec(message)?.[1];
    return {
      what: `the database server has no database ${name ? `'${name}'` : 'named in --database-url'}`,
      fix: `create it (CREATE DATABASE \`${name ?? '<name>'}\` CHARACTER SET utf8mb4;), then run kuroko migrate, or fix the name in --database-url`,
    };
  }
  if (syscall === 'connect' || syscall === 'getaddrinfo' || error.fatal === true) {
    const database = error.fatal === true ? 'the database' : 'the server';
    const option = error.fatal === true ? '--database-url (or KUROKO_DATABASE_URL)' : 'the URL you gave';
    if (code === 'ECONNREFUSED') return { what: `cannot reach ${database} at ${where(error)}: connection refused`, fix: `start it, or fix the host and port in ${option}` };
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { what: `cannot reach ${database}: the host name ${text(error.hostname) ?? ''} does not resolve`, fix: `fix the host in ${option}` };
    if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return { what: `cannot reach ${database} at ${where(error)}: ${code === 'ETIMEDOUT' ? 'no answer (timed out)' : 'no route to the host'}`, fix: `check that it runs and that a firewall lets this host in, or fix ${option}` };
    }
  }

  // AWS SDK errors (the Data API dialect): the service's answer, named, with what to check.
  const aws = (error as { $metadata?: { httpStatusCode?: number }; name?: unknown }).$metadata;
  const name = text((error as { name?: unknown }).name);
  if (name === 'CredentialsProviderError') {
    return { what: `no AWS credentials found for the Data API: ${message.split('\n')[0]}`, fix: 'set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run on a host with an instance role' };
  }
  if (name === 'DatabaseResumingException') {
    return { what: 'the Aurora cluster is resuming from its pause', fix: 'start again in a minute; it answers once it has resumed' };
  }
  if (aws !== undefined && name !== undefined) {
    return {
      what: `the RDS Data API refused the call: ${name}${aws.httpStatusCode ? ` (HTTP ${aws.httpStatusCode})` : ''}: ${message.split('\n')[0]}`,
      fix: "check the cluster ARN, ?secret= and &database= in --database-url, and that this host's AWS credentials may use them",
    };
  }

  if (code === 'ERR_DLOPEN_FAILED' || /NODE_MODULE_VERSION \d+/.test(message)) {
    const versions = /NODE_MODULE_VERSION (\d+)\. This version of Node\.js requires\s+NODE_MODULE_VERSION (\d+)/.exec(message);
    const native = message.includes(NATIVE_MODULE) ? `the native SQLite module (${NATIVE_MODULE})` : 'a native module';
    return {
      what: versions
        ? `${native} was built for another Node.js version (NODE_MODULE_VERSION ${versions[1]}; Node.js ${process.versions.node} needs ${versions[2]})`
        : `${native} cannot be loaded: ${message.split('\n')[0]}`,
      fix: REBUILD,
    };
  }
  if (message.startsWith('Could not locate the bindings file')) {
    return { what: `the native SQLite module (${NATIVE_MODULE}) is installed but was never built`, fix: REBUILD };
  }
  if (message.includes(`need the ${NATIVE_MODULE} package`)) {
    const next = / next to (\S+)/.exec(message)?.[1];
    return { what: `the native SQLite module (${NATIVE_MODULE}) is not installed`, fix: `run \`npm install ${NATIVE_MODULE}@12\` next to ${next ?? 'kuroko'}` };
  }

  const path = text(error.path);
  if (code === 'ENOSPC' || code === 'SQLITE_FULL' || code === 'EDQUOT') {
    return { what: `the disk is full${path ? ` (writing ${path})` : ''}`, fix: `free some space, or move kuroko's files to another disk with ${dirOption(context.command)}` };
  }
  if (path && code && Object.hasOwn(FS_REASONS, code)) {
    return { what: `cannot write ${path}: ${FS_REASONS[code]}`, fix: `make it a writable directory, or choose another with ${dirOption(context.command)}` };
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_IOERR') {
    return { what: `SQLite cannot write its database file: ${message}`, fix: `make the data dir writable, or choose another with ${dirOption(context.command)}` };
  }
  return undefined;
}

/** One or two lines for a failure kuroko expects at start; undefined for anything else (a bug). */
export function explainStartupFailure(error: unknown, context: FailureContext): FailureExplanation | undefined {
  for (const link of errorChain(error)) {
    if (link instanceof SchemaNewerError) {
      return { what: link.message, fix: 'run the newer kuroko build that migrated this database; no build ever migrates a schema down' };
    }
    if (link instanceof ConfigError) return { what: link.message.replace(/^invalid configuration:\n\s*- /, '').replace(/\n\s*- /g, '; '), fix: `see kuroko ${context.command} --help` };
    const explained = explainOne(fields(link), context);
    if (explained) return explained;
  }
  return undefined;
}

/** The stack of an error and of every cause below it, for --debug. */
export function debugTrace(error: unknown): string {
  return errorChain(error)
    .map((link, i) => `${i === 0 ? '' : 'caused by: '}${link instanceof Error ? (link.stack ?? `${link.name}: ${link.message}`) : String(link)}`)
    .join('\n');
}
