/**
 * The one run-while-busy loop: runs a pass again at once while it reports more work, adds up what the passes did,
 * and gathers what they nudge. The local runtime (app/background-loop.ts) and every Lambda (app/lambda/) run their
 * passes through it; what a pass is (what runs, when there is more, what it nudges) is data in app/passes.ts.
 */

/** The passes of the engine (core/services), each run by a loop or a Lambda function. */
export const PASS_NAME = {
  processor: 'processor',
  scheduler: 'scheduler',
  monitor: 'monitor',
  notifier: 'notifier',
  provisioner: 'provisioner',
  retention: 'retention',
} as const;
export type PassName = (typeof PASS_NAME)[keyof typeof PASS_NAME];

/** What a pass can wake after it ran: another pass, or the agents (they poll on AWS; in-process ones are nudged). */
export const NUDGE_TARGET = { processor: PASS_NAME.processor, notifier: PASS_NAME.notifier, agents: 'agents' } as const;
export type NudgeTarget = (typeof NUDGE_TARGET)[keyof typeof NUDGE_TARGET];

/** What a pass sees of its invocation: how many passes ran before it and how much time is left. */
export interface PassBudget {
  readonly passes: number;
  /** Milliseconds left to the invocation (Infinity in a long-running process). */
  remainingMs(): number;
}

/** What makes a pass, independent of where it runs. */
export interface PassPolicy<R> {
  readonly name: PassName;
  /** The result of no pass at all (what a run that started none reports). */
  readonly empty: R;
  /** True when more work may be waiting right away: the loop runs the pass again. */
  more(result: R): boolean;
  /** Who to wake after this result. */
  nudges(result: R): readonly NudgeTarget[];
  /** May a pass start with this budget left? Default: yes. */
  canStart?(budget: PassBudget): boolean;
}

/** A pass: its policy and how one run goes. */
export interface Pass<R> extends PassPolicy<R> {
  run(budget: PassBudget): Promise<R>;
}

export const STOPPED_BY = {
  /** The last pass found nothing more to do. */
  idle: 'idle',
  /** Too little time was left for another pass. */
  time: 'time',
  /** The loop's own limit (a long-running process yields to its timer, or is stopping). */
  limit: 'limit',
} as const;
export type StoppedBy = (typeof STOPPED_BY)[keyof typeof STOPPED_BY];

export type BusyRun<R> = R & { passes: number; stoppedBy: StoppedBy };

export interface RunWhileBusyOptions<R> {
  /** Milliseconds left to the invocation; default: no end. */
  remainingMs?: () => number;
  /** Passes at most in this run; default: no limit. */
  maxPasses?: number;
  /** Checked before each pass after the first; false stops the run (a process shutting down). */
  keepGoing?: () => boolean;
  /** Called after each pass with its result and what it nudges (a long-running process wakes them at once). */
  afterPass?: (result: R, nudges: readonly NudgeTarget[]) => void;
}

/** The run's result and the targets its passes nudged (a Lambda wakes them once, before it returns). */
export interface BusyOutcome<R> {
  total: BusyRun<R>;
  nudges: ReadonlySet<NudgeTarget>;
}

/** Runs `pass` while it reports more work, within the budget; adds up the numbers of its results. */
export async function runWhileBusy<R extends object>(pass: Pass<R>, options: RunWhileBusyOptions<R> = {}): Promise<BusyOutcome<R>> {
  const remainingMs = options.remainingMs ?? (() => Number.POSITIVE_INFINITY);
  const nudges = new Set<NudgeTarget>();
  let total: R = { ...pass.empty };
  let passes = 0;
  let stoppedBy: StoppedBy = STOPPED_BY.idle;
  for (;;) {
    if (passes > 0 && options.keepGoing && !options.keepGoing()) {
      stoppedBy = STOPPED_BY.limit;
      break;
    }
    if (options.maxPasses !== undefined && passes >= options.maxPasses) {
      stoppedBy = STOPPED_BY.limit;
      break;
    }
    const budget: PassBudget = { passes, remainingMs };
    if (pass.canStart && !pass.canStart(budget)) {
      stoppedBy = STOPPED_BY.time;
      break;
    }
    const result = await pass.run(budget);
    passes++;
    total = addUpResults(total, result);
    const wakes = pass.nudges(result);
    for (const target of wakes) nudges.add(target);
    options.afterPass?.(result, wakes);
    if (!pass.more(result)) break;
  }
  return { total: { ...total, passes, stoppedBy }, nudges };
}

/** Numbers add up; anything else takes the latest pass's value (also for whole runs: passes add up). */
export function addUpResults<R extends object>(total: R, result: R): R {
  const sum: Record<string, unknown> = { ...(total as Record<string, unknown>) };
  for (const [key, value] of Object.entries(result)) {
    const before = sum[key];
    sum[key] = typeof value === 'number' && typeof before === 'number' ? before + value : value;
  }
  return sum as R;
}
