/**
 * `kuroko agent`: a worker agent for the self-hosted mode. Runs until SIGTERM or SIGINT, then drains (claims
 * nothing more, lets running commands finish within the drain grace, kills the rest) and exits 0.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import * as z from 'zod/mini';
import { createAgent } from '../agent/agent';
import type { AgentLogger } from '../agent/agent';
import { FileLogSink } from '../adapters/logs/file-log-sink';
import { DEFAULT_SHELL_PATH } from '../agent/process-runner';
import { retrying } from '../agent/fenced-writes';
import { prepareRunAs, type RunAsUser } from '../agent/run-as';
import { ConfigError, errorMessage } from '../core/errors';
import { DEFAULT_QUEUE } from '../core/model';
import { DEFAULT_HOT_POLL_MS } from '../core/poll-pace';
import { DIALECT, createDatabase, parseDatabaseUrl, type DatabaseHandle } from '../db/connection';
import { retryReason } from '../db/dialects/data-api-retry';
import { assertSchemaNotNewer } from '../db/migrator';
import { lastValue, parseCliArgs } from './cli-args';
import { EXIT_CODE } from './sub-command';
import type { CliIo, SubCommand } from './sub-command';

import { AGENT_ENV_KEYS } from '../app/config/env-keys';

/** Environment variables `kuroko agent` falls back to when an option is not given (named in app/config/env-keys.ts). */
export { AGENT_ENV_KEYS };

/** Where command output goes unless told otherwise (the local mode's data folder). */
export const DEFAULT_AGENT_LOG_DIR = '.kuroko/logs';
const DEFAULT_SLOTS = 2;
const MAX_SLOTS = 256;
const MS_PER_SECOND = 1000;
/** A timer longer than this (about 24.8 days) fires at once in Node. */
const MAX_SECONDS = Math.floor(2 ** 31 / MS_PER_SECOND) - 1;
/** Beyond this the monitor would call a healthy worker lost. */
const MAX_HEARTBEAT_SECONDS = 60;
const QUEUE_NAME = /^@?[\w-]{1,180}$/;
const PRIVATE_DIR_MODE = 0o700;

export const AGENT_USAGE =
  'usage: kuroko agent --database-url URL [--queue NAME]... [--slots N] [--hostname NAME] [--log-dir DIR] [--idle-timeout SECONDS]\n' +
  '       [--heartbeat-interval SECONDS] [--run-as USER]';

const HELP = `${AGENT_USAGE}

Runs a worker agent: claims commands of the given queues, runs each in its own process group, and records
pid, output and exit status. SIGTERM or SIGINT drains it: nothing new is claimed, running commands may finish
(then they are killed), and it exits 0.

Worker hosts should run the bundle \`npm run build:agent\` writes (node dist/kuroko-agent.mjs, same options):
it holds about half the memory of \`kuroko agent\` run from the TypeScript sources.

  --database-url URL      sqlite:<file>, mysql://user:pass@host:port/db or data-api://...  [${AGENT_ENV_KEYS.databaseUrl}]
  --queue NAME            a queue to serve; repeat for several (default ${DEFAULT_QUEUE})  [${AGENT_ENV_KEYS.queues}, comma-separated]
  --slots N               commands run at once (default ${DEFAULT_SLOTS})  [${AGENT_ENV_KEYS.slots}]
  --hostname NAME         the name recorded for this worker (default: the machine's)
  --log-dir DIR           where each command's whole output is written (default ${DEFAULT_AGENT_LOG_DIR})  [${AGENT_ENV_KEYS.logDir}]
  --idle-timeout SECONDS  stop after this long with nothing to run (default: never)
  --heartbeat-interval SECONDS
                          how often the worker row is refreshed, leases renewed and kill requests read (default 5)
  --run-as USER           run every command as USER (uid, primary group, HOME, USER, LOGNAME; working directory
                          its home), not as the agent's own user, so commands cannot read the agent's database URL,
                          credentials or log folder (made 0700). The agent must run as root (or hold CAP_SETUID,
                          CAP_SETGID and CAP_KILL); it checks at start that it can start and kill USER's processes.
                          Give the database URL through ${AGENT_ENV_KEYS.databaseUrl}: a command line is visible to every user.  [${AGENT_ENV_KEYS.runAs}]
`;

export type Environment = Readonly<Record<string, string | undefined>>;

export interface AgentCommandConfig {
  databaseUrl: string;
  queues: string[];
  slots: number;
  hostname: string | undefined;
  logDir: string;
  idleTimeoutMs: number | undefined;
  heartbeatIntervalMs: number | undefined;
  /** The user name or uid commands run as (`--run-as`), undefined to run them as the agent's own user. */
  runAs: string | undefined;
}

/** The value options of `kuroko agent` (`--queue` may repeat). */
const OPTION_NAMES = ['--database-url', '--queue', '--slots', '--hostname', '--log-dir', '--idle-timeout', '--heartbeat-interval', '--run-as'];

// zod/mini (tree-shaken to a few kilobytes) rather than zod: the agent process stays small (see bench:local).
const integerText = (what: string, min: number, max: number) =>
  z.pipe(
    z.pipe(z.string().check(z.trim(), z.regex(/^\d+$/, `${what} must be a whole number`)), z.transform(Number)),
    z.number().check(z.int(), z.gte(min, `${what} must be at least ${min}`), z.lte(max, `${what} must be at most ${max}`)),
  );

const nonEmpty = (message: string) => z.string().check(z.trim(), z.minLength(1, message));
const DATABASE_URL_REQUIRED = `a database URL is required: --database-url or ${AGENT_ENV_KEYS.databaseUrl}`;

const configSchema = z.object({
  databaseUrl: z.string({ error: DATABASE_URL_REQUIRED }).check(
    z.trim(),
    z.minLength(1, DATABASE_URL_REQUIRED),
    z.superRefine((url, ctx) => {
      try {
        parseDatabaseUrl(url);
      } catch (error) {
        const problems = error instanceof ConfigError ? error.message.split('\n').slice(1).map((p) => p.replace(/^\s*- /, '')) : [String(error)];
        for (const message of problems) ctx.addIssue({ code: 'custom', message, input: url });
      }
    }),
  ),
  queues: z.array(z.string().check(z.regex(QUEUE_NAME, 'is not a queue name (@?[\\w-]{1,180})'))).check(z.minLength(1)),
  slots: integerText('--slots', 1, MAX_SLOTS),
  hostname: z.optional(nonEmpty('--hostname must not be empty').check(z.maxLength(255))),
  logDir: nonEmpty('--log-dir must not be empty'),
  idleTimeout: z.optional(integerText('--idle-timeout', 1, MAX_SECONDS)),
  heartbeatInterval: z.optional(integerText('--heartbeat-interval', 1, MAX_HEARTBEAT_SECONDS)),
  runAs: z.optional(nonEmpty('--run-as must not be empty')),
});

/** Reads the options (falling back to the environment) into a config; throws ConfigError listing every problem. */
export function parseAgentConfig(args: readonly string[], env: Environment): AgentCommandConfig & { help: boolean } {
  const cli = parseCliArgs(args, OPTION_NAMES);
  const { problems } = cli;
  if (cli.help) return { ...emptyConfig(), help: true };
  const option = (name: string) => lastValue(cli, name);
  const givenQueues = cli.values['--queue'] ?? [];
  const envQueues = (env[AGENT_ENV_KEYS.queues] ?? '')
    .split(',')
    .map((q) => q.trim())
    .filter((q) => q !== '');
  const queues = givenQueues.length > 0 ? givenQueues : envQueues.length > 0 ? envQueues : [DEFAULT_QUEUE];
  const input = {
    databaseUrl: option('--database-url') ?? env[AGENT_ENV_KEYS.databaseUrl],
    queues,
    slots: option('--slots') ?? env[AGENT_ENV_KEYS.slots] ?? String(DEFAULT_SLOTS),
    hostname: option('--hostname'),
    logDir: option('--log-dir') ?? env[AGENT_ENV_KEYS.logDir] ?? DEFAULT_AGENT_LOG_DIR,
    idleTimeout: option('--idle-timeout'),
    heartbeatInterval: option('--heartbeat-interval'),
    runAs: option('--run-as') ?? env[AGENT_ENV_KEYS.runAs],
  };
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      problems.push(`${where}${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const data = parsed.data;
  return {
    help: false,
    databaseUrl: data.databaseUrl,
    queues: [...new Set(data.queues)],
    slots: data.slots,
    hostname: data.hostname,
    logDir: resolve(data.logDir),
    idleTimeoutMs: data.idleTimeout === undefined ? undefined : data.idleTimeout * MS_PER_SECOND,
    heartbeatIntervalMs: data.heartbeatInterval === undefined ? undefined : data.heartbeatInterval * MS_PER_SECOND,
    runAs: data.runAs,
  };
}

function emptyConfig(): AgentCommandConfig {
  return { databaseUrl: '', queues: [], slots: DEFAULT_SLOTS, hostname: undefined, logDir: DEFAULT_AGENT_LOG_DIR, idleTimeoutMs: undefined, heartbeatIntervalMs: undefined, runAs: undefined };
}

/** One line per message on stderr: time, level, message, and the data as JSON. */
function streamLogger(io: CliIo): AgentLogger {
  const line = (level: string) => (message: string, data?: Record<string, unknown>) =>
    io.stderr(`${new Date().toISOString()} ${level} ${message}${data === undefined ? '' : ` ${JSON.stringify(data)}`}\n`);
  return { info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
}

export interface AgentCommandDeps {
  env?: Environment;
  /** Where SIGTERM / SIGINT come from (the process by default). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** Runs `kuroko agent`; resolves with the exit status once the agent has drained. */
export async function runAgentCommand(args: readonly string[], io: CliIo, deps: AgentCommandDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  let config: AgentCommandConfig & { help: boolean };
  try {
    config = parseAgentConfig(args, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr(`kuroko agent: ${error.message}\n${AGENT_USAGE}\n`);
    return EXIT_CODE.usage;
  }
  if (config.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  const logger = streamLogger(io);
  let runAs: RunAsUser | undefined;
  if (config.runAs !== undefined) {
    try {
      runAs = await prepareRunAs(config.runAs, DEFAULT_SHELL_PATH);
      await closeToOthers(config.logDir);
    } catch (error) {
      io.stderr(`kuroko agent: ${errorMessage(error)}\n`);
      return EXIT_CODE.problems;
    }
    if (args.some((arg) => arg.startsWith('--database-url')) && /:\/\/[^/@]*:[^/@]*@/.test(config.databaseUrl)) {
      logger.warn(`--database-url holds a password, and every user (${runAs.name} too) can read the agent's command line: use ${AGENT_ENV_KEYS.databaseUrl}`);
    }
    logger.info(`commands run as ${runAs.name} (uid ${runAs.uid}, gid ${runAs.gid})`);
  }
  // The agent's only transactions are its claims, which run READ COMMITTED: set once per session, not per claim.
  const database = createDatabase(config.databaseUrl, { readCommitted: true });
  const logSink = new FileLogSink(config.logDir);
  const agent = createAgent({
    database,
    queues: config.queues,
    slots: config.slots,
    // Nothing wakes a separate agent but the database: poll it every few ms while work is in flight (issue 18),
    // except over the Data API, where every read is a billed call.
    hotPollMs: database.capabilities.costlyStatements ? 0 : DEFAULT_HOT_POLL_MS,
    logSink,
    logger,
    // Exit statuses next to the logs: a restarted agent records what ended while it was dead.
    statusDir: config.logDir,
    inheritEnv: { HOME: env.HOME, PATH: env.PATH, LANG: env.LANG },
    ...(runAs !== undefined ? { runAs } : {}),
    ...(config.hostname !== undefined ? { hostname: config.hostname } : {}),
    ...(config.idleTimeoutMs !== undefined ? { idleTimeoutMs: config.idleTimeoutMs } : {}),
    ...(config.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: config.heartbeatIntervalMs } : {}),
  });
  const signals = deps.signals ?? process;
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info(`${signal} received: draining`);
    void agent.stop(signal);
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    // A failure here (database unreachable or refusing, a schema from a newer build, no SQLite module) is reported
    // by the command guard (cli/command-guard.ts) as what failed and what to do.
    await checkSchemaThroughBlips(database, logger);
    await agent.start();
    await agent.done;
    return EXIT_CODE.ok;
  } finally {
    signals.off('SIGTERM', onSignal);
    signals.off('SIGINT', onSignal);
    await logSink.closeAll();
    await database.close();
  }
}

/** How long the start-up schema check keeps trying while Data API calls fail for now. */
export const SCHEMA_CHECK_RETRY_MS = 30_000;

/**
 * The schema check, tried again while a Data API call fails for now (dropped, throttled or 5xx: the client already
 * tried it a few times), for up to SCHEMA_CHECK_RETRY_MS: chaos scenario 3's agents, started while every call was
 * being dropped, exited on it. On MySQL and SQLite a database that refuses or is not there is reported at once.
 */
function checkSchemaThroughBlips(database: DatabaseHandle, logger: AgentLogger): Promise<void> {
  return retrying(Number.POSITIVE_INFINITY, SCHEMA_CHECK_RETRY_MS, () => assertSchemaNotNewer(database.db), {
    retryable: (error) => database.dialect === DIALECT.dataApi && retryReason(error) !== undefined,
    baseMs: SCHEMA_CHECK_RETRY_BASE_MS,
    onRetry: (error, failures) => logger.warn('could not read the schema version over the Data API; retrying', { error: errorMessage(error), failures }),
  });
}
const SCHEMA_CHECK_RETRY_BASE_MS = 500;

/** The agent's log folder, readable by its own user only: commands run as another user must not read other commands' output. */
async function closeToOthers(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}

export const agentCommand: SubCommand = { run: (args, io) => runAgentCommand(args, io) };
