/**
 * Adaptive polling (issue 18): how long a process that polls the database waits before it looks again. While work
 * is in flight, or was within the hot window, it looks every `hotMs` (a cheap indexed read), so separate processes
 * learn of each other's work within milliseconds; after that the wait grows with the idle time (a twentieth of
 * it) until it reaches the old fixed interval, so an idle deployment costs what it did before.
 *
 * Nothing is carried by the pace: the database is the only state, and a look that finds nothing costs one read.
 */
export interface PollPace {
  /** The wait while work is in flight; 0 or less turns adaptive polling off (the wait is always idleMs). */
  hotMs: number;
  /** How long after the last work the wait stays at hotMs. */
  hotWindowMs: number;
  /** The longest wait: the old fixed poll interval. */
  idleMs: number;
  /**
   * false: after the hot window, wait idleMs at once instead of growing towards it. For a process something else
   * wakes (an agent listening to a doorbell): its idle poll is only the fallback for a lost wake-up, so nothing is
   * in flight and it reads nothing until then. Default true.
   */
  ramp?: boolean;
}

/** A new fixed interval's default hot window: long enough to span the hand-off between two steps of a workflow. */
export const DEFAULT_HOT_WINDOW_MS = 2_000;
/** The default wait while work is in flight on a database where a read costs well under a millisecond. */
export const DEFAULT_HOT_POLL_MS = 2;
/** After the hot window the wait is the idle time divided by this. */
const IDLE_FRACTION = 20;

/** The wait before the next look; `busy` is true while work is in flight, `idleForMs` the time since work was seen. */
export function nextPollMs(pace: PollPace, busy: boolean, idleForMs: number): number {
  if (pace.hotMs <= 0) return pace.idleMs;
  if (busy || idleForMs < pace.hotWindowMs) return Math.min(pace.hotMs, pace.idleMs);
  if (pace.ramp === false) return pace.idleMs;
  return Math.min(pace.idleMs, Math.max(pace.hotMs, Math.floor(idleForMs / IDLE_FRACTION)));
}
