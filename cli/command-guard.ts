/**
 * The wrapper every `kuroko` sub-command runs in (cli/main.ts puts each command of its table through it, so a new
 * command gets it without asking): a failure it can foresee at start becomes two lines on stderr, what failed and
 * what to do, and exit status 1; anything else is one line that says it is a bug and where to report it. A stack
 * trace is printed only with --debug (or KUROKO_DEBUG=1).
 */
import { describeError } from '../core/errors';
import { debugTrace, explainStartupFailure, REPORT_HINT } from './startup-errors';
import { EXIT_CODE, type CliIo } from './sub-command';

export const DEBUG_FLAG = '--debug';
export const DEBUG_ENV = 'KUROKO_DEBUG';

/** True when the environment asks for stack traces (KUROKO_DEBUG=1, true or yes). */
export function debugFromEnv(env: Readonly<Record<string, string | undefined>>): boolean {
  return /^(1|true|yes)$/i.test(env[DEBUG_ENV]?.trim() ?? '');
}

/**
 * Removes `--debug` from a command line (before any `--`, after which words are the command's own) and says whether
 * it was there, so sub-commands never see it.
 */
export function takeDebugFlag(argv: readonly string[]): { args: string[]; debug: boolean } {
  const end = argv.indexOf('--');
  const head = end < 0 ? [...argv] : argv.slice(0, end);
  const tail = end < 0 ? [] : argv.slice(end);
  const args = head.filter((arg) => arg !== DEBUG_FLAG);
  return { args: [...args, ...tail], debug: args.length !== head.length };
}

export interface GuardOptions {
  /** The sub-command's name, for the `kuroko <name>:` prefix and the options its fixes name. */
  command: string;
  io: CliIo;
  debug: boolean;
}

/** Writes what failed and what to do (or, for a bug, where to report it); the stack only in debug mode. */
export function reportFailure(error: unknown, { command, io, debug }: GuardOptions): void {
  const prefix = `kuroko${command ? ` ${command}` : ''}:`;
  const explained = explainStartupFailure(error, { command });
  const lines = explained
    ? [`${prefix} ${explained.what}`, `  fix: ${explained.fix}`]
    : [`${prefix} unexpected error: ${describeError(error).split('\n')[0]}`, `  ${REPORT_HINT}`];
  if (debug) lines.push(debugTrace(error));
  io.stderr(`${lines.join('\n')}\n`);
}

/** Runs one sub-command; a thrown error is reported by {@link reportFailure} and becomes exit status 1. */
export async function runGuarded(options: GuardOptions, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    reportFailure(error, options);
    return EXIT_CODE.problems;
  }
}
