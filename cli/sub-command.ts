/** Exit statuses shared by every sub-command. */
export const EXIT_CODE = {
  ok: 0,
  /** The command ran and found problems (an invalid script, a failed check). */
  problems: 1,
  /** The command could not run as asked: bad arguments, an unreadable file. */
  usage: 2,
} as const;
export type ExitCode = (typeof EXIT_CODE)[keyof typeof EXIT_CODE];

/** Where a sub-command writes; tests pass collectors, `main` passes the process streams. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** One `kuroko <name>` sub-command. */
export interface SubCommand {
  /** Runs with the arguments after the sub-command's name and returns the exit status. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}
