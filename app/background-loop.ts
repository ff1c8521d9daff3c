/**
 * A pass run periodically in a long-running process (`kuroko dev`, `kuroko server`) that can also be nudged:
 * `nudge()` runs it as soon as the current run ends instead of waiting for the next tick. Nudges are gathered: the
 * run they ask for starts once the current turn of the event loop is over (or after `nudgeDelayMs`), so the commands
 * that ended in the same turn, or the steps committed within the delay, make one run instead of one each. Each run goes through
 * the shared run-while-busy loop (app/run-while-busy.ts): a pass that reports more work is followed at once by
 * another, up to a limit, and what it nudges is woken after each pass. Errors are logged and retried with backoff;
 * they never stop the loop.
 */
import { runWhileBusy, type NudgeTarget, type Pass } from './run-while-busy';

export interface BackgroundLoop {
  readonly name: string;
  start(): void;
  nudge(): void;
  /** Stops ticking and waits for a run in progress to end. */
  stop(): Promise<void>;
  /** Runs once now (tests, shutdown flushes) and waits for it. */
  runOnce(): Promise<void>;
}

export interface LoopLogger {
  error(message: string, error: unknown): void;
}

export interface BackgroundLoopOptions<R extends object> {
  intervalMs: number;
  pass: Pass<R>;
  /** Wakes what a pass nudges (another loop, the in-process agents). */
  nudge: (target: NudgeTarget) => void;
  /** Called after each pass (a log line, a metric). */
  afterPass?: (result: R) => void;
  logger: LoopLogger;
  /** Longest wait after repeated failures. */
  maxBackoffMs?: number;
  /**
   * How long a nudge may wait for more nudges before its run starts (default 0: at the end of the event loop's
   * current turn). A pass nobody waits on (the notifier) gathers a busy processor's nudges into one run this way.
   */
  nudgeDelayMs?: number;
}

const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** Passes in a row that report more work before the loop yields to the timer, so one busy loop cannot starve I/O. */
const MAX_PASSES_PER_RUN = 51;

/** Creates a loop; call start() to begin ticking. */
export function createBackgroundLoop<R extends object>(options: BackgroundLoopOptions<R>): BackgroundLoop {
  const { pass } = options;
  const maxBackoff = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  let timer: NodeJS.Timeout | undefined;
  /** A nudge's run not started yet: later nudges join it. */
  let nudged: { cancel(): void } | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;
  let failures = 0;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void kick(), delayMs);
    timer.unref?.();
  };

  async function runSeries(): Promise<void> {
    do {
      again = false;
      try {
        await runWhileBusy(pass, {
          maxPasses: MAX_PASSES_PER_RUN,
          keepGoing: () => !stopped,
          afterPass: (result, nudges) => {
            for (const target of nudges) options.nudge(target);
            options.afterPass?.(result);
          },
        });
        failures = 0;
      } catch (error) {
        failures++;
        options.logger.error(`${pass.name} failed (attempt ${failures})`, error);
        again = false;
        schedule(Math.min(maxBackoff, options.intervalMs * 2 ** Math.min(failures, 10)));
        return;
      }
    } while (again && !stopped);
    schedule(options.intervalMs);
  }

  function kick(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = runSeries().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    name: pass.name,
    start() {
      if (!stopped) return;
      stopped = false;
      void kick();
    },
    nudge() {
      if (stopped || nudged) return;
      const run = () => {
        nudged = undefined;
        if (!stopped) void kick();
      };
      if (options.nudgeDelayMs) {
        const delayed = setTimeout(run, options.nudgeDelayMs);
        nudged = { cancel: () => clearTimeout(delayed) };
      } else {
        const immediate = setImmediate(run);
        nudged = { cancel: () => clearImmediate(immediate) };
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      nudged?.cancel();
      nudged = undefined;
      await running;
    },
    runOnce: () => kick(),
  };
}
