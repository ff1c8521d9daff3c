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
};

function helpText(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((name) => name.length));
  const lines = names.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name]?.summary ?? ''}`);
  return `usage: kuroko <command> [arguments]\n\ncommands:\n${lines.join('\n')}\n\nRun \`kuroko <command> --help\` for a command's own help.\n`;
}

const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** Runs `kuroko` with its arguments (without node and the script) and returns the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...args] = argv;
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
  const command = await entry.load();
  return command.run(args, io);
}
