/**
 * `kuroko dev` (what `npm start` runs): everything in one process on an embedded SQLite file, with in-process
 * agents. `kuroko server`: the same without agents, on the database a URL names (MySQL/MariaDB for teams
 * without AWS), with `kuroko agent` processes on each host.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, describeError } from '../core/errors';
import { parseDatabaseUrl, redact } from '../db/connection';
import type { EngineServices } from '../app/engine-services';
import { ensureApiClients, generateSecret, parseApiClientsSpec, type ApiClientSpec } from '../http/api/http-auth';
import { readLocalEnv, type LocalEnvConfig } from '../app/config/local-config';
import { readConsoleConfig, type ConsoleConfig } from '../http/console/console-config';
import { lastValue, parseCliArgs } from './cli-args';
import { DEFAULT_INTERVALS, dataDirPaths, startRuntime, type RuntimeLogger } from './runtime/kuroko-runtime';
import { EXIT_CODE, type CliIo, type SubCommand } from './sub-command';
import { ENV_KEYS } from '../app/config/env-keys';

type Mode = 'dev' | 'server';

const DEFAULT_PORT = 3000;
const DEFAULT_DATA_DIR = '.kuroko';
const DEFAULT_DEV_AGENTS = 2;
const DEFAULT_AGENT_SLOTS = 4;
const MAX_AGENTS = 64;
/** The client the local mode creates on first start when KUROKO_API_CLIENTS names none. */
const LOCAL_CLIENT_NAME = 'local';
/** Where the local mode keeps the console's cookie signing key, so sessions survive restarts. */
const CONSOLE_SECRET_FILE = 'console-secret';

/** The definition seeded on the first start of the local mode, so a newcomer sees a workflow run at once. */
export const EXAMPLE_DEFINITION = {
  name: 'hello-kuroko',
  description: 'An example seeded on first start: environment, a fork, and commands. Launch it from the API.',
  script: [
    'env: GREETING="hello from kuroko"',
    'execute: echo "$GREETING (instance $KUROKO2_JOB_INSTANCE_ID)"',
    'fork:',
    '  execute: echo left; sleep 1',
    '  execute: echo right; sleep 1',
    'execute: echo done',
    '',
  ].join('\n'),
  apiAllowed: true,
  tags: ['example'],
};

const HELP: Record<Mode, string> = {
  dev: `usage: kuroko dev [--port N] [--host H] [--data-dir DIR] [--agents N]

Runs everything in one process on an embedded SQLite file: the HTTP API, the processor, scheduler, notifier and
monitor loops, and in-process agents. A restart continues where it stopped.

  --port N        HTTP port (default ${DEFAULT_PORT})  [PORT]
  --host H        address to listen on (default 127.0.0.1)  [KUROKO_HOST]
  --data-dir DIR  where the database and command logs live (default ${DEFAULT_DATA_DIR})  [KUROKO_DATA_DIR]
  --agents N      in-process agents, ${DEFAULT_AGENT_SLOTS} commands each; 0 runs none (default ${DEFAULT_DEV_AGENTS})  [KUROKO_AGENTS]
  KUROKO_API_CLIENTS  name:secret[:scope],... API clients to create (default: a generated '${LOCAL_CLIENT_NAME}' admin client)
  KUROKO_MONITOR_INTERVAL_SECONDS (10), KUROKO_ASSIGNMENT_DELAY_SECONDS (300), KUROKO_PROCESS_ABSENCE_SECONDS (30),
  KUROKO_WORKER_LOST_SECONDS (120), KUROKO_AGENT_HEARTBEAT_SECONDS (5): monitoring thresholds
  KUROKO_RETENTION_DAYS (90): finished and canceled instances older than this are deleted daily; 0 keeps them
  KUROKO_BASE_URL, KUROKO_SLACK_WEBHOOK_URL, KUROKO_WEBHOOK_SECRET: notifications (events are also printed here)
  The web console is at the same URL; a one-time sign-in link is printed at start (its cookie key is kept in
  the data dir). KUROKO_OIDC_ISSUER, KUROKO_OIDC_CLIENT_ID, KUROKO_OIDC_CLIENT_SECRET, KUROKO_OIDC_ALLOWED_DOMAINS
  and KUROKO_CONSOLE_ADMINS add OpenID Connect sign-in.
`,
  server: `usage: kuroko server --database-url URL [--port N] [--host H] [--agents N] [--log-dir DIR]

Runs the HTTP API with the processor, scheduler, notifier and monitor loops on one host, over the database the
URL names (mysql://user:pass@host:3306/db). Run \`kuroko agent\` on each worker host.

  --database-url URL  [KUROKO_DATABASE_URL]
  --port N            HTTP port (default ${DEFAULT_PORT})  [PORT]
  --host H            address to listen on (default 0.0.0.0)  [KUROKO_HOST]
  --agents N          in-process agents as well (default 0)  [KUROKO_AGENTS]
  --log-dir DIR       command output of in-process agents (default ${DEFAULT_DATA_DIR}/logs)  [KUROKO_LOG_DIR]
  KUROKO_API_CLIENTS  name:secret[:scope],... API clients to create or update at start
  KUROKO_CONSOLE_SECRET (cookie signing key, 32+ characters), KUROKO_OIDC_ISSUER, KUROKO_OIDC_CLIENT_ID,
  KUROKO_OIDC_CLIENT_SECRET, KUROKO_OIDC_ALLOWED_DOMAINS, KUROKO_CONSOLE_ADMINS: the web console's sign-in
  (without OIDC, a one-time sign-in link is printed at start)
`,
};

const integer = (what: string, min: number, max: number) =>
  z.coerce.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`);

const optionsSchema = z.object({
  port: integer('--port', 0, 65_535),
  host: z.string().min(1),
  agents: integer('--agents', 0, MAX_AGENTS),
  dataDir: z.string().min(1),
  databaseUrl: z.string().min(1, 'a database URL is required: --database-url or KUROKO_DATABASE_URL'),
  logDir: z.string().min(1),
});

export type LocalModeOptions = z.infer<typeof optionsSchema> &
  LocalEnvConfig & {
    apiClients: ApiClientSpec[] | undefined;
    console: ConsoleConfig;
    notices: string[];
  };

/** Reads options and environment into a config; throws ConfigError listing every problem. */
export function parseLocalModeOptions(mode: Mode, args: readonly string[], env: NodeJS.ProcessEnv): LocalModeOptions & { help: boolean } {
  const parsed = parseCliArgs(args, ['--port', '--host', '--data-dir', '--agents', '--database-url', '--log-dir']);
  const dataDir = resolve(lastValue(parsed, '--data-dir') ?? env[ENV_KEYS.dataDir] ?? DEFAULT_DATA_DIR);
  const paths = dataDirPaths(dataDir);
  const input = {
    port: lastValue(parsed, '--port') ?? env[ENV_KEYS.port] ?? String(DEFAULT_PORT),
    host: lastValue(parsed, '--host') ?? env[ENV_KEYS.host] ?? (mode === 'dev' ? '127.0.0.1' : '0.0.0.0'),
    agents: lastValue(parsed, '--agents') ?? env[ENV_KEYS.agents] ?? String(mode === 'dev' ? DEFAULT_DEV_AGENTS : 0),
    dataDir,
    databaseUrl: mode === 'dev' ? `sqlite:${paths.databaseFile}` : (lastValue(parsed, '--database-url') ?? env[ENV_KEYS.databaseUrl] ?? ''),
    logDir: resolve(lastValue(parsed, '--log-dir') ?? env[ENV_KEYS.logDir] ?? paths.logDir),
  };
  const problems = [...parsed.problems];
  if (mode === 'dev' && (parsed.values['--database-url'] || parsed.values['--log-dir'])) problems.push('kuroko dev always uses its data dir; use kuroko server for another database');
  const result = optionsSchema.safeParse(input);
  if (!result.success) for (const issue of result.error.issues) problems.push(issue.message);
  if (result.success && mode === 'server') {
    try {
      parseDatabaseUrl(result.data.databaseUrl);
    } catch (error) {
      problems.push(describeError(error));
    }
  }
  const attempt = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (error) {
      // A file system failure (the console's key file in an unwritable data dir) is not a bad option: the command
      // guard says what failed and what to do.
      if ((error as NodeJS.ErrnoException).syscall !== undefined) throw error;
      problems.push(error instanceof ConfigError ? error.message.replace(/^invalid configuration:\n/, '').trim() : describeError(error));
      return undefined;
    }
  };
  const clientsSpec = env[ENV_KEYS.apiClients];
  const apiClients = attempt(() => (clientsSpec ? parseApiClientsSpec(clientsSpec) : undefined));
  const local = readLocalEnv(env);
  problems.push(...local.problems);
  const notices: string[] = [];
  const consoleConfig = attempt(() =>
    readConsoleConfig(env, {
      ...(mode === 'dev' ? { secretFile: join(dataDir, CONSOLE_SECRET_FILE) } : {}),
      localSignIn: mode === 'dev' ? 'always' : 'without-oidc',
      warn: (message) => notices.push(message),
    }),
  );
  if (parsed.help) return { help: true } as LocalModeOptions & { help: boolean };
  if (problems.length > 0 || !result.success || !local.config || !consoleConfig) throw new ConfigError(problems);
  return {
    ...result.data,
    ...local.config,
    apiClients,
    console: consoleConfig,
    notices,
    help: false,
  };
}

const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

/**
 * The data dir holds the database (API client hashes, definitions, env), the credentials file, the console's
 * signing key and every command's output: only its owner may enter it (0700), and the database file is created
 * 0600 before SQLite opens it (SQLite gives its -wal and -shm files the database file's mode). A dir or database
 * left by an older version is tightened too.
 */
export function securePrivateDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(dataDir, PRIVATE_DIR_MODE);
  const { databaseFile, logDir } = dataDirPaths(dataDir);
  closeSync(openSync(databaseFile, 'a', PRIVATE_FILE_MODE));
  chmodSync(databaseFile, PRIVATE_FILE_MODE);
  mkdirSync(logDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(logDir, PRIVATE_DIR_MODE);
}

/** The credentials of the local mode's generated client, kept in the data dir so restarts print the same. */
function localCredentials(file: string): ApiClientSpec {
  if (existsSync(file)) {
    const stored = z.object({ name: z.string(), secret: z.string() }).parse(JSON.parse(readFileSync(file, 'utf8')));
    return { ...stored, scope: 'admin' };
  }
  const spec: ApiClientSpec = { name: LOCAL_CLIENT_NAME, secret: generateSecret(), scope: 'admin' };
  writeFileSync(file, `${JSON.stringify({ name: spec.name, secret: spec.secret })}\n`, { mode: 0o600 });
  return spec;
}

/** Seeds the example definition once, on a database without definitions. */
async function seedExample(services: EngineServices): Promise<number | undefined> {
  const any = await services.handle.db.selectFrom('job_definitions').select('id').limit(1).executeTakeFirst();
  if (any) return undefined;
  const created = await services.stores.definitions.create(EXAMPLE_DEFINITION, 'kuroko dev (first start)');
  return created.id;
}

function ioLogger(io: CliIo): RuntimeLogger {
  const line = (level: string) => (message: string, data?: Record<string, unknown>) =>
    io.stderr(`${new Date().toISOString()} ${level} ${message}${data && Object.keys(data).length > 0 ? ` ${JSON.stringify(data)}` : ''}\n`);
  return { info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
}

export interface LocalModeDeps {
  env?: NodeJS.ProcessEnv;
  signals?: Pick<NodeJS.Process, 'once' | 'off'>;
}

/** Runs `kuroko dev` or `kuroko server` until SIGINT or SIGTERM. */
export async function runLocalMode(mode: Mode, args: readonly string[], io: CliIo, deps: LocalModeDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  let options: LocalModeOptions & { help: boolean };
  try {
    options = parseLocalModeOptions(mode, args, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr(`kuroko ${mode}: ${error.message}\n\n${HELP[mode]}`);
    return EXIT_CODE.usage;
  }
  if (options.help) {
    io.stdout(HELP[mode]);
    return EXIT_CODE.ok;
  }
  const logger = ioLogger(io);
  if (mode === 'dev') securePrivateDataDir(options.dataDir);
  const clients = options.apiClients ?? (mode === 'dev' ? [localCredentials(dataDirPaths(options.dataDir).credentialsFile)] : []);
  let seeded: number | undefined;
  const runtime = await startRuntime({
    databaseUrl: options.databaseUrl,
    host: options.host,
    port: options.port,
    agents: options.agents,
    agentSlots: DEFAULT_AGENT_SLOTS,
    logDir: options.logDir,
    intervals: { ...DEFAULT_INTERVALS, monitorMs: options.monitorIntervalMs, agentHeartbeatMs: options.agentHeartbeatMs },
    declaredQueues: [],
    notification: {
      slackWebhookUrl: options.notification.slackWebhookUrl,
      webhookSecret: options.notification.webhookSecret,
      ...(options.notification.webhookAllowLinkLocal ? { webhookAllowLinkLocal: true } : {}),
      baseUrl: options.baseUrl,
    },
    monitor: options.monitor,
    retentionDays: options.retentionDays,
    customTasks: options.customTasks,
    consoleNotifications: true,
    console: options.console,
    logger,
    prepare: async (services) => {
      await ensureApiClients(services.stores.apiClients, clients);
      if (mode === 'dev') seeded = await seedExample(services);
    },
  });

  const first = clients[0];
  // One write, so whoever reads the banner (a person, a script, a test) never sees half of it.
  const banner = [
    `Kuroko ${mode === 'dev' ? 'local mode' : 'server'} listening on ${runtime.url}  (database ${redact(options.databaseUrl)}, ${options.agents} agent(s))`,
  ];
  if (first) {
    banner.push(`API client: ${first.name} (${first.scope})${options.apiClients ? ', from KUROKO_API_CLIENTS' : `, secret kept in ${dataDirPaths(options.dataDir).credentialsFile}`}`);
    if (!options.apiClients) banner.push(`  curl -u ${first.name}:${first.secret} ${runtime.url}/v1/definitions`);
  }
  if (seeded !== undefined) {
    banner.push(`Seeded the example definition '${EXAMPLE_DEFINITION.name}' (id ${seeded}). Launch it:`);
    banner.push(`  curl -u ${first?.name}:${first?.secret} -X POST ${runtime.url}/v1/definitions/${seeded}/instances`);
  }
  if (runtime.consoleSignInLink) banner.push(`Console sign-in link (works once, for 15 minutes): ${runtime.consoleSignInLink()}`);
  banner.push('Ctrl-C stops it cleanly; a restart continues where it stopped.');
  for (const notice of options.notices) logger.warn(notice);
  io.stdout(`${banner.join('\n')}\n`);

  const signals = deps.signals ?? process;
  await new Promise<void>((resolveStop) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info(`received ${signal}: draining agents and stopping`);
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
      resolveStop();
    };
    signals.once('SIGINT', onSignal);
    signals.once('SIGTERM', onSignal);
  });
  await runtime.stop();
  io.stdout('stopped\n');
  return EXIT_CODE.ok;
}

export const devCommand: SubCommand = { run: (args, io) => runLocalMode('dev', args, io) };
export const serverCommand: SubCommand = { run: (args, io) => runLocalMode('server', args, io) };
