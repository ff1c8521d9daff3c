/**
 * The small argument reader every `kuroko` sub-command shares: `--name value`, `--name=value`, repeatable
 * options, `--help`, with environment fallbacks applied by the caller's zod schema.
 */
export interface ParsedArgs {
  values: Record<string, string[]>;
  help: boolean;
  problems: string[];
}

/** Reads `args` for the given option names (each `--name`); unknown options and stray words are problems. */
export function parseCliArgs(args: readonly string[], optionNames: readonly string[]): ParsedArgs {
  const known = new Set(optionNames);
  const result: ParsedArgs = { values: {}, help: false, problems: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      result.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!known.has(name)) {
      result.problems.push(arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument ${arg}`);
      continue;
    }
    const value = name !== arg ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) {
      result.problems.push(`${name} needs a value`);
      continue;
    }
    (result.values[name] ??= []).push(value);
  }
  return result;
}

/** The last value given for an option, if any. */
export function lastValue(parsed: ParsedArgs, name: string): string | undefined {
  return parsed.values[name]?.at(-1);
}
