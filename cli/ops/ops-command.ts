/** Wraps an operator command: its help, and the exit status and message for usage errors and API failures. */
import { EXIT_CODE } from '../sub-command';
import type { CliIo, SubCommand } from '../sub-command';
import { OpsError, UsageError } from './ops-client';

/** Exit statuses of commands that wait for an instance, beside EXIT_CODE's 0, 1 (API failure) and 2 (usage). */
export const OUTCOME_EXIT = { success: EXIT_CODE.ok, error: 3, canceled: 4 } as const;

export function opsCommand(name: string, help: string, run: (args: readonly string[], io: CliIo) => Promise<number>): SubCommand {
  return {
    async run(args, io) {
      if (args.includes('--help') || args.includes('-h')) {
        io.stdout(help);
        return EXIT_CODE.ok;
      }
      try {
        return await run(args, io);
      } catch (error) {
        if (error instanceof UsageError) {
          io.stderr(`kuroko ${name}: ${error.message}\n${help.split('\n')[0] ?? ''}\n`);
          return EXIT_CODE.usage;
        }
        if (error instanceof OpsError) {
          io.stderr(`kuroko ${name}: ${error.message}\n`);
          return EXIT_CODE.problems;
        }
        throw error;
      }
    },
  };
}

/** How long to wait between two polls of an instance (KUROKO_POLL_INTERVAL_MS, default 1 s). */
export function pollIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.KUROKO_POLL_INTERVAL_MS);
  return Number.isInteger(value) && value > 0 ? value : 1000;
}

export { setTimeout as sleep } from 'node:timers/promises';
