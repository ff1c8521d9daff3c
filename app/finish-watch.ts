/**
 * Wakes the processor of `kuroko server` when a separate agent finishes a command (issue 18). Nothing else tells
 * the server: agents reach only the database. While commands are in flight the watch reads a cheap signature of the
 * finished executions every few milliseconds (db/repositories/finish-probe-repository.ts) and nudges the processor
 * when it changes; at idle its wait grows back to the processor's own interval (core/poll-pace.ts). The processor
 * wakes it when a pass queued commands, so the first finish is seen at once.
 *
 * It carries no state: a missed change only costs the processor's own tick. Each wait is at least the last read's
 * duration, so the reads take at most half of one connection; the read is an index probe whose cost does not grow
 * with the commands in flight, so under load its duration is mostly the round trip (about 1 ms on a busy 2-core
 * machine, where four times it added 3 to 4 ms to W1's hop from a finish to the next command's queueing).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_HOT_WINDOW_MS, nextPollMs, type PollPace } from '../core/poll-pace';
import type { FinishProbe } from '../db/repositories/finish-probe-repository';

export interface FinishWatchOptions {
  probe: () => Promise<FinishProbe>;
  /** Called when a command finished since the last look. */
  onFinished: () => void;
  /** hotMs and idleMs (the processor's interval); hotWindowMs defaults to core's. */
  pace: Omit<PollPace, 'hotWindowMs'> & { hotWindowMs?: number };
  onError: (error: unknown) => void;
  /**
   * While true (a processor pass runs), the watch does not read: the pass steps what had finished when it listed,
   * and the signature kept from before the pause still shows what finished after (issue 18: the reads were a
   * quarter of a busy server's statements).
   */
  paused?: () => boolean;
}

export interface FinishWatch {
  start(): void;
  /** Looks now and stays hot: a pass just queued commands. */
  wake(): void;
  stop(): Promise<void>;
}

/** A read's duration times this is the shortest wait after it. */
const READ_SHARE = 1;

export function createFinishWatch(options: FinishWatchOptions): FinishWatch {
  const pace: PollPace = { hotWindowMs: DEFAULT_HOT_WINDOW_MS, ...options.pace };
  let stopped = true;
  let loop: Promise<void> = Promise.resolve();
  let sleeping: AbortController | undefined;
  let woken = false;
  let lastBusyAt = performance.now();

  const wait = async (ms: number) => {
    if (woken) return;
    sleeping = new AbortController();
    await sleep(ms, undefined, { signal: sleeping.signal }).catch(() => undefined);
    sleeping = undefined;
  };

  const run = async () => {
    let signature: string | undefined;
    let failures = 0;
    while (!stopped) {
      woken = false;
      const began = performance.now();
      let busy = false;
      if (options.paused?.()) {
        lastBusyAt = began;
        await wait(pace.hotMs);
        continue;
      }
      try {
        const seen = await options.probe();
        failures = 0;
        busy = seen.inFlight;
        if (signature !== undefined && seen.finishedSignature !== signature) {
          busy = true;
          options.onFinished();
        }
        signature = seen.finishedSignature;
      } catch (error) {
        failures++;
        options.onError(error);
      }
      const now = performance.now();
      if (busy) lastBusyAt = now;
      const paced = nextPollMs(pace, busy, now - lastBusyAt);
      await wait(failures > 0 ? pace.idleMs : Math.max(paced, (now - began) * READ_SHARE));
    }
  };

  return {
    start() {
      if (!stopped || pace.hotMs <= 0) return;
      stopped = false;
      loop = run();
    },
    wake() {
      lastBusyAt = performance.now();
      woken = true;
      sleeping?.abort();
    },
    async stop() {
      stopped = true;
      sleeping?.abort();
      await loop;
    },
  };
}
