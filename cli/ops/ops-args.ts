/**
 * Arguments of the operator commands (read by cli/cli-args.ts) and the connection options every one of them takes.
 */
import { readArgs } from '../cli-args';
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

/** Reads `args`; the first problem (an unknown option, a missing value) is a UsageError. */
export function parseOpsArgs(args: readonly string[], spec: { options?: readonly string[]; flags?: readonly string[] }): OpsArgs {
  const parsed = readArgs(args, { options: [...CONNECTION_OPTIONS, ...(spec.options ?? [])], flags: spec.flags ?? [], positionals: true });
  const [problem] = parsed.problems;
  if (problem !== undefined) throw new UsageError(problem);
  return { positionals: parsed.positionals, options: parsed.values, flags: parsed.flags, help: parsed.help };
}

export function lastOption(args: OpsArgs, name: string): string | undefined {
  return args.options[name]?.at(-1);
}

export function connectionOptions(args: OpsArgs): { url: string | undefined; client: string | undefined } {
  return { url: lastOption(args, '--url'), client: lastOption(args, '--client') };
}
