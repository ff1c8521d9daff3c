/**
 * Arguments of the operator commands: positionals, `--name value` / `--name=value` options (repeatable),
 * boolean flags, `--help`, and the connection options every one of them takes.
 */
import { UsageError } from './ops-client';

export interface OpsArgs {
  positionals: string[];
  options: Record<string, string[]>;
  flags: Set<string>;
  help: boolean;
}

/** The options every operator command takes. */
export const CONNECTION_OPTIONS = ['--url', '--client'] as const;

export const CONNECTION_HELP = `Connection (every operator command):
  --url URL            the API's base URL (or KUROKO_URL), e.g. http://127.0.0.1:3000
  --client NAME:SECRET an API client's credentials (or KUROKO_CLIENT)
`;

/** Reads `args`; unknown options are a UsageError. */
export function parseOpsArgs(args: readonly string[], spec: { options?: readonly string[]; flags?: readonly string[] }): OpsArgs {
  const options = new Set([...CONNECTION_OPTIONS, ...(spec.options ?? [])]);
  const flags = new Set(spec.flags ?? []);
  const out: OpsArgs = { positionals: [], options: {}, flags: new Set(), help: false };
  let onlyPositionals = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      out.positionals.push(arg);
    } else if (arg === '--') {
      onlyPositionals = true;
    } else if (arg === '--help' || arg === '-h') {
      out.help = true;
    } else if (flags.has(arg)) {
      out.flags.add(arg);
    } else {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      if (!options.has(name)) throw new UsageError(`unknown option ${arg}`);
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      (out.options[name] ??= []).push(value);
    }
  }
  return out;
}

export function lastOption(args: OpsArgs, name: string): string | undefined {
  return args.options[name]?.at(-1);
}

export function connectionOptions(args: OpsArgs): { url: string | undefined; client: string | undefined } {
  return { url: lastOption(args, '--url'), client: lastOption(args, '--client') };
}
