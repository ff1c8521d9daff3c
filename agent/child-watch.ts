/**
 * Follows a spawned command's merged output and its exit (see process-runner.ts for why stdout is held back until
 * the shell's stderr redirect took effect, and CommandResult for when the result is settled).
 */
import type { ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import type { CommandResult } from './process-runner';

/**
 * After the leader exited, `done` waits for the output pipe to close, but only while output keeps coming:
 * it gives up after this long without output. A background grandchild (`sleep 300 &`) inherits the pipe
 * and may hold it open for ever; the command is over when its leader is. Waiting for silence rather than
 * a fixed time keeps the last output of a busy agent, whose reads lag behind the exit.
 */
export const DEFAULT_OUTPUT_DRAIN_MS = 500;
/** The longest `done` waits after the leader's exit, for a grandchild that never stops writing. */
export const OUTPUT_DRAIN_CAP_MS = 10_000;

/** Follows a spawned child's output and exit; see CommandResult for when it resolves. */
export function watchChild(
  child: ChildProcess,
  emit: (chunk: string) => void,
  drainMs: number,
): Promise<Omit<CommandResult, 'startedAt'>> {
  const stdout = child.stdout;
  const stderr = child.stderr;
  if (stdout === null || stderr === null) throw new Error('spawn did not create the output pipes');
  const outDecoder = new StringDecoder('utf8');
  const errDecoder = new StringDecoder('utf8');
  let holdStdout = true;
  let held: string[] = [];
  let stdoutOpen = true;
  let stderrOpen = true;
  let exit: { exitStatus: number | null; termSignal: string | null; finishedAt: Date } | undefined;

  const fromStdout = (text: string): void => {
    if (holdStdout) held.push(text);
    else emit(text);
  };
  const release = (): void => {
    if (!holdStdout) return;
    holdStdout = false;
    const chunks = held;
    held = [];
    for (const chunk of chunks) emit(chunk);
  };

  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    let settled = false;
    let lastOutputAt = performance.now();
    const drainUntilQuiet = (exitedAt: number): void => {
      const now = performance.now();
      const quietLeft = lastOutputAt + drainMs - now;
      const capLeft = exitedAt + OUTPUT_DRAIN_CAP_MS - now;
      if (quietLeft <= 0 || capLeft <= 0) {
        settle(false);
        return;
      }
      drainTimer = setTimeout(() => drainUntilQuiet(exitedAt), Math.min(quietLeft, capLeft));
    };
    const settle = (outputDrained: boolean): void => {
      if (settled || exit === undefined) return;
      settled = true;
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      release();
      if (!outputDrained) {
        // Keep reading (so a grandchild never blocks on a full pipe) without keeping the agent alive.
        unrefStream(stdout);
        unrefStream(stderr);
      }
      resolve({ ...exit, outputDrained });
    };
    const maybeFinish = (): void => {
      if (!stdoutOpen && !stderrOpen) settle(true);
    };

    stdout.on('data', (data: Buffer) => {
      lastOutputAt = performance.now();
      fromStdout(outDecoder.write(data));
    });
    stderr.on('data', (data: Buffer) => {
      lastOutputAt = performance.now();
      emit(errDecoder.write(data));
    });
    stdout.on('close', () => {
      stdoutOpen = false;
      fromStdout(outDecoder.end());
      maybeFinish();
    });
    stderr.on('close', () => {
      stderrOpen = false;
      emit(errDecoder.end());
      release();
      maybeFinish();
    });
    child.on('exit', (code, signal) => {
      exit = { exitStatus: code, termSignal: signal, finishedAt: new Date() };
      release();
      maybeFinish();
      if (!settled) {
        const exitedAt = performance.now();
        lastOutputAt = Math.max(lastOutputAt, exitedAt);
        drainUntilQuiet(exitedAt);
      }
    });
  });
}

function unrefStream(stream: Readable): void {
  const handle = stream as Readable & { unref?: () => void };
  handle.unref?.();
}
