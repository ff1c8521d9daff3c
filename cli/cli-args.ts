/**
 * The argument reader every `kuroko` command shares, on `node:util`'s parseArgs: `--name value`,
 * `--name=value`, repeatable options, boolean flags, positionals, `--` and `--help`/`-h`. Environment fallbacks
 * are applied by the caller's zod schema; problems are collected, never thrown, so a command lists them all.
 */
import { parseArgs } from 'node:util';

export interface ParsedArgs {
  values: Record<string, string[]>;
  flags: Set<string>;
  positionals: string[];
  help: boolean;
  problems: string[];
}

export interface ArgsSpec {
  /** Options that take a value, spelled `--name`. */
  options?: readonly string[];
  /** Options without a value, spelled `--name`. */
  flags?: readonly string[];
  /** Whether words that are not options are accepted; otherwise each is a problem. */
  positionals?: boolean;
}

/** Reads `args` by `spec`; unknown options, missing values and unexpected words are problems. */
export function readArgs(args: readonly string[], spec: ArgsSpec): ParsedArgs {
  const valued = new Set(spec.options ?? []);
  const flags = new Set(spec.flags ?? []);
  const options = Object.fromEntries([
    ['help', { type: 'boolean', short: 'h' }],
    ...[...valued].map((name) => [name.slice(2), { type: 'string', multiple: true }]),
    ...[...flags].map((name) => [name.slice(2), { type: 'boolean', multiple: true }]),
  ]) as NonNullable<Parameters<typeof parseArgs>[0]>['options'];
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const out: ParsedArgs = { values: {}, flags: new Set(), positionals: [], help: false, problems: [] };
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (spec.positionals) out.positionals.push(token.value);
      else out.problems.push(`unexpected argument ${token.value}`);
    } else if (token.kind === 'option') {
      const name = `--${token.name}`;
      if (token.name === 'help') out.help = true;
      else if (flags.has(name)) out.flags.add(name);
      else if (!valued.has(name)) out.problems.push(`unknown option ${token.inlineValue ? `${token.rawName}=${token.value}` : token.rawName}`);
      else if (token.value === undefined) out.problems.push(`${name} needs a value`);
      else (out.values[name] ??= []).push(token.value);
    }
  }
  return out;
}

/** Reads `args` for the given option names (each `--name`), with no positionals. */
export function parseCliArgs(args: readonly string[], optionNames: readonly string[]): ParsedArgs {
  return readArgs(args, { options: optionNames });
}

/** The last value given for an option, if any. */
export function lastValue(parsed: Pick<ParsedArgs, 'values'>, name: string): string | undefined {
  return parsed.values[name]?.at(-1);
}
