import { readFile } from 'node:fs/promises';
import { validateScript } from '../core/dsl/script-validator';
import { EXIT_CODE } from './sub-command';
import type { CliIo, SubCommand } from './sub-command';
import { ConfigError, errorMessage } from '../core/errors';
import { loadCustomTasks } from '../app/config/custom-tasks-config';

export const VALIDATE_USAGE = 'usage: kuroko validate [--] FILE...';

const HELP = `${VALIDATE_USAGE}

Checks workflow scripts offline and prints one line per problem on stdout:
  FILE:LINE:COLUMN: MESSAGE
Exit status: 0 when every script is valid (nothing is printed), 1 when any has a problem,
2 for bad arguments or a file that cannot be read (reported on stderr).
Checks that need a running deployment (known queues, existing job definitions for wait:) are skipped.
The deployment's custom tasks are read from KUROKO_CUSTOM_TASKS or KUROKO_CUSTOM_TASKS_FILE.
`;

function parseArgs(args: readonly string[]): { files: string[]; help: boolean } | { error: string } {
  const files: string[] = [];
  let optionsEnded = false;
  for (const arg of args) {
    if (optionsEnded || !arg.startsWith('-') || arg === '-') files.push(arg);
    else if (arg === '--') optionsEnded = true;
    else if (arg === '--help' || arg === '-h') return { files, help: true };
    else return { error: `unknown option ${arg}` };
  }
  return { files, help: false };
}

/** Validates each file and reports problems as `file:line:column: message`; see {@link HELP}. */
export async function runValidate(args: readonly string[], io: CliIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const parsed = parseArgs(args);
  if ('error' in parsed) {
    io.stderr(`kuroko validate: ${parsed.error}\n${VALIDATE_USAGE}\n`);
    return EXIT_CODE.usage;
  }
  if (parsed.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  if (parsed.files.length === 0) {
    io.stderr(`${VALIDATE_USAGE}\n`);
    return EXIT_CODE.usage;
  }
  let customTasks;
  try {
    customTasks = loadCustomTasks(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr(`kuroko validate: ${error.message}\n`);
    return EXIT_CODE.usage;
  }
  let unreadable = false;
  let invalid = false;
  for (const file of parsed.files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      io.stderr(`kuroko validate: cannot read ${file}: ${errorMessage(error)}\n`);
      unreadable = true;
      continue;
    }
    const problems = validateScript(text, { customTasks });
    if (problems.length > 0) invalid = true;
    io.stdout(problems.map((p) => `${file}:${p.line}:${p.column}: ${p.message}\n`).join(''));
  }
  if (unreadable) return EXIT_CODE.usage;
  return invalid ? EXIT_CODE.problems : EXIT_CODE.ok;
}

export const validateCommand: SubCommand = { run: (args, io) => runValidate(args, io) };
