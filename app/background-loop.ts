/**
 * A pass run periodically in a long-running process (`kuroko dev`, `kuroko server`) that can also be nudged:
 * `nudge()` runs it as soon as the current run ends instead of waiting for the next tick. Each run goes through
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
}

const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** Passes in a row that report more work before the loop yields to the timer, so one busy loop cannot starve I/O. */
const MAX_PASSES_PER_RUN = 51;

/** Creates a loop; call start() to begin ticking. */
export function createBackgroundLoop<R extends object>(options: BackgroundLoopOptions<R>): BackgroundLoop {
  const { pass } = options;
  const maxBackoff = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  let timer: NodeJS.Timeout | undefined;
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
      if (stopped) return;
      void kick();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    runOnce: () => kick(),
  };
}
