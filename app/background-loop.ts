/**
 * A periodic task that can also be nudged: `nudge()` runs it as soon as the current run ends instead of waiting
 * for the next tick. A run that reports more work is followed at once by another. Errors are logged and
 * retried with backoff; they never stop the loop.
 */
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

export interface BackgroundLoopOptions {
  name: string;
  intervalMs: number;
  /** One run; resolve true when there may be more work right away. */
  run: () => Promise<boolean | void>;
  logger: LoopLogger;
  /** Longest wait after repeated failures. */
  maxBackoffMs?: number;
}

const DEFAULT_MAX_BACKOFF_MS = 30_000;
/** Runs in a row that report more work before the loop yields to the timer, so one busy loop cannot starve I/O. */
const MAX_IMMEDIATE_RUNS = 50;

/** Creates a loop; call start() to begin ticking. */
export function createBackgroundLoop(options: BackgroundLoopOptions): BackgroundLoop {
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
    let immediate = 0;
    do {
      again = false;
      try {
        const more = await options.run();
        failures = 0;
        if (more === true && immediate++ < MAX_IMMEDIATE_RUNS) again = true;
      } catch (error) {
        failures++;
        options.logger.error(`${options.name} failed (attempt ${failures})`, error);
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
    name: options.name,
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
