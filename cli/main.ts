import { debugFromEnv, reportFailure, runGuarded, takeDebugFlag } from './command-guard';
import { EXIT_CODE } from './sub-command';
import type { CliIo, SubCommand } from './sub-command';

interface CommandEntry {
  readonly summary: string;
  /** Loaded on demand so `kuroko validate` never pulls in a database driver or a server. */
  readonly load: () => Promise<SubCommand>;
}

/**
 * The sub-commands of `kuroko`. Add one here (`server`, `agent`, `migrate`, `dev`, `api-client`...) with a
 * lazy `load` of its module; `--help` lists this table.
 */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  dev: {
    summary: 'run everything in one process on an embedded SQLite file, with in-process agents (npm start)',
    load: async () => (await import('./dev-command')).devCommand,
  },
  server: {
    summary: 'run the API and the processor, scheduler, notifier and monitor loops over MySQL/MariaDB',
    load: async () => (await import('./dev-command')).serverCommand,
  },
  migrate: {
    summary: 'bring a database (sqlite:, mysql://, data-api://) to the latest schema',
    load: async () => (await import('./migrate-command')).migrateCommand,
  },
  validate: {
    summary: 'check workflow script files and print every problem as FILE:LINE:COLUMN: MESSAGE',
    load: async () => (await import('./validate-command')).validateCommand,
  },
  launch: {
    summary: 'launch a job over the HTTP API (--url/KUROKO_URL, --client/KUROKO_CLIENT); --wait/--follow exit with its outcome',
    load: async () => (await import('./ops/instance-commands')).launchCommand,
  },
  instances: {
    summary: "list a job's instances, or those working or in error, over the HTTP API",
    load: async () => (await import('./ops/instance-commands')).instancesCommand,
  },
  logs: {
    summary: "print an instance's log lines over the HTTP API (--follow until it ends)",
    load: async () => (await import('./ops/instance-commands')).logsCommand,
  },
  retry: {
    summary: "run an instance's failed token again over the HTTP API",
    load: async () => (await import('./ops/instance-commands')).retryCommand,
  },
  skip: {
    summary: "move an instance's failed or waiting token past its node over the HTTP API",
    load: async () => (await import('./ops/instance-commands')).skipCommand,
  },
  cancel: {
    summary: 'cancel an instance over the HTTP API',
    load: async () => (await import('./ops/instance-commands')).cancelCommand,
  },
  definitions: {
    summary: 'definitions as code: export DIR writes one file per job, apply DIR [--prune] [--dry-run] makes the API match',
    load: async () => (await import('./ops/definitions-command')).definitionsCommand,
  },
  'api-client': {
    summary: 'create an API client (kuroko api-client create NAME --scope read|launch|admin) and print its secret once',
    load: async () => (await import('./api-client-command')).apiClientCommand,
  },
  import: {
    summary: 'import a Kuroko2 database (kuroko import kuroko2 --from mysql://… --database-url TARGET [--dry-run])',
    load: async () => (await import('./import-command')).importCommand,
  },
  agent: {
    summary: 'run a worker agent: claim commands of the given queues and run them until SIGTERM (then drain)',
    load: async () => (await import('./agent-command')).agentCommand,
  },
  doctor: {
    summary: 'check Node.js, the SQLite module, the data dir, the database, the port, Chromium and the deploy config, with the fix for each',
    load: async () => (await import('./doctor-command')).doctorCommand,
  },
};

function helpText(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((name) => name.length));
  const lines = names.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name]?.summary ?? ''}`);
  return `usage: kuroko <command> [arguments]\n\ncommands:\n${lines.join('\n')}\n\nRun \`kuroko <command> --help\` for a command's own help; add --debug (or KUROKO_DEBUG=1) for stack traces.\n`;
}

const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/**
 * Runs `kuroko` with its arguments (without node and the script) and returns the exit status. Every sub-command
 * runs inside runGuarded (cli/command-guard.ts): failures at start become what failed and what to do, stack traces
 * only with --debug or KUROKO_DEBUG=1.
 */
export async function main(argv: readonly string[], io: CliIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const flag = takeDebugFlag(argv);
  const debug = flag.debug || debugFromEnv(env);
  const [name, ...args] = flag.args;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout(helpText());
    return EXIT_CODE.ok;
  }
  if (name === undefined) {
    io.stderr(helpText());
    return EXIT_CODE.usage;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (entry === undefined) {
    io.stderr(`kuroko: unknown command \`${name}\`\n\n${helpText()}`);
    return EXIT_CODE.usage;
  }
  return runGuarded({ command: name, io, debug }, async () => (await entry.load()).run(args, io));
}

/** Reports an error nothing else caught (bin/kuroko.js routes uncaught exceptions here) the way runGuarded does. */
export function reportFatal(error: unknown, argv: readonly string[], io: CliIo = processIo, env: NodeJS.ProcessEnv = process.env): void {
  const flag = takeDebugFlag(argv);
  const name = flag.args[0];
  reportFailure(error, { command: name !== undefined && Object.hasOwn(COMMANDS, name) ? name : '', io, debug: flag.debug || debugFromEnv(env) });
}
