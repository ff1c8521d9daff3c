import type { WorkflowEngine } from '../engine/workflow-engine';
import { TOKEN_STATUS, type Execution, type Token } from '../model';
import type { StepOutcome, StepReader, StepWriter } from '../ports';

/**
 * The processor's view of the store. A pass reads only the tokens that have something to do: those whose wake
 * time has come (set with every write of the token, and by whatever the token waits for: a child's end, a sub
 * process's end, another job's end) and those whose command ended. A token left unchanged by its step is put
 * back to sleep until its next recheck, so nothing is read again and again while it waits. Every processable
 * token is due again within RUNNING_RECHECK_MS at the latest: that bound is the safety net for a lost wake-up.
 */
export interface ProcessorStore extends StepReader, StepWriter {
  /** Up to `limit` tokens whose step is due now or whose command ended, with their executions prefetched. */
  listDueTokens(limit: number): Promise<Token[]>;
  clearPrefetch(): void;
  /**
   * Wakes the tokens waiting for the instances this pass's steps ended (sub process parents, `wait:` tokens): once
   * per batch rather than after each step. Should the process die first, the waiters' recheck finds the ends.
   */
  wakeWaiters(): Promise<void>;
  /** A step that changed nothing: the token sleeps until `wakeWhenUnchanged` says (fenced on its version). */
  postpone(token: Token): Promise<void>;
  /** Archives finished commands whose token is gone (canceled or critical instances); returns how many. */
  archiveOrphanedExecutions(): Promise<number>;
  /**
   * Writes chains of steps together, each chain the steps of one token in a row, fenced once on its first step's
   * version; answers per chain whether it was written (false: another processor moved the token first).
   */
  commitChains(chains: readonly (readonly StepOutcome[])[]): Promise<boolean[]>;
  /** Takes a step not yet committed as what the next step of its token reads (with commitChains). */
  stage?(outcome: StepOutcome): void;
}

/** Wake time of a token due at once (the column's default, so a token written by any path is stepped). */
export const WAKE_NOW = new Date(0);
/** Wake time of a token with nothing left to do (finished, failed, critical): only a retry or skip moves it. */
export const WAKE_NEVER = new Date('9999-12-31T23:59:59.000Z');
/**
 * A token whose command runs is found by the command's end (an index on executions.finished_at); it is stepped
 * this often anyway for its timeout and expected time, which count in minutes.
 */
export const RUNNING_RECHECK_MS = 60_000;
/**
 * A token waiting for children, a sub process or other jobs is woken by their end; it is stepped this often
 * anyway (the `wait:` timeout, and the safety net should a wake-up be lost).
 */
export const WAITING_RECHECK_MS = 5_000;

const MS_PER_SECOND = 1_000;

function processable(token: Token): boolean {
  return token.status === TOKEN_STATUS.working || token.status === TOKEN_STATUS.waiting;
}

function sleepsUntil(token: Token, now: Date): Date | undefined {
  const sleep = token.context.SLEEP;
  return sleep !== undefined && sleep * MS_PER_SECOND > now.getTime() ? new Date(sleep * MS_PER_SECOND) : undefined;
}

/** When a token written by this outcome is next due. */
export function wakeAfterCommit(outcome: StepOutcome, now: Date): Date {
  const token = outcome.token;
  if (!token || !processable(token)) return WAKE_NEVER;
  const recheck = new Date(now.getTime() + RUNNING_RECHECK_MS);
  if (outcome.newExecution) return recheck;
  const sleep = sleepsUntil(token, now);
  if (!sleep) return now;
  return sleep < recheck ? sleep : recheck;
}

/** When a token whose step changed nothing is next due. */
export function wakeWhenUnchanged(token: Token, execution: Execution | undefined, now: Date): Date {
  if (!processable(token)) return WAKE_NEVER;
  if (execution && execution.finishedAt === null) return new Date(now.getTime() + RUNNING_RECHECK_MS);
  const recheck = new Date(now.getTime() + WAITING_RECHECK_MS);
  const sleep = sleepsUntil(token, now);
  return sleep && sleep < recheck ? sleep : recheck;
}

/**
 * Steps one token may take in one pass: a chain of quick nodes goes on at once, and a long one (a loop of noops)
 * still leaves room for the others; the rest waits for the next pass, which the committed steps bring at once.
 */
export const MAX_STEPS_PER_TOKEN = 10;

/**
 * The token to step again at once after this committed outcome: one still working with nothing to wait for (no
 * command queued, no sleep, no children, no sub process, no kill), as the outcome wrote it. Undefined otherwise.
 */
export function dueAgainAtOnce(outcome: StepOutcome): Token | undefined {
  const token = outcome.token;
  if (!token || token.status !== TOKEN_STATUS.working || token.context.SLEEP !== undefined) return undefined;
  if (outcome.newExecution || outcome.newTokens.length > 0 || outcome.launches.length > 0 || outcome.kills.length > 0) return undefined;
  return token;
}

/**
 * Events an outcome announces to the notifier: those it wrote, and for a root token's first step the launch's event,
 * written with the token by the launch (whose caller nudges only the processor).
 */
export function announcedBy(outcome: StepOutcome): number {
  const firstRootStep = outcome.expectedVersion === 0 && outcome.token?.parentId === null;
  return outcome.events.length + (firstRootStep ? 1 : 0);
}

export interface ProcessorPassResult {
  /** Tokens the engine looked at. */
  stepped: number;
  /** Outcomes written. */
  committed: number;
  /** Outcomes another processor wrote first (harmless: that one's step counts). */
  lostRaces: number;
  /** Committed outcomes that queued a command (what the agents' doorbell is rung for). */
  queued: number;
  /**
   * The ids of the executions those outcomes queued, at most MAX_QUEUED_IDS (the doorbell's hints: agents may claim
   * them by id). Absent when the pass queued none.
   */
  queuedIds?: number[];
  /** Events the committed outcomes wrote or follow (announcedBy): what the notifier is nudged for. */
  announced: number;
}

/** Queued executions' ids one pass result names at most. */
export const MAX_QUEUED_IDS = 100;

/** Counts the commands committed outcomes queued and notes their ids. */
function noteQueued(result: ProcessorPassResult, outcomes: readonly StepOutcome[]): void {
  for (const outcome of outcomes) {
    if (outcome.newExecution === undefined) continue;
    result.queued++;
    const ids = (result.queuedIds ??= []);
    if (ids.length < MAX_QUEUED_IDS) ids.push(outcome.newExecution.id);
  }
}

/** Default tokens read per query. */
export const DEFAULT_PROCESSOR_BATCH_SIZE = 200;
/** Batches one pass takes at most; the loop running passes comes back at once while a pass commits. */
const MAX_BATCHES_PER_PASS = 10;

export interface ProcessorPassOptions {
  /** Tokens read per query. */
  batchSize?: number;
  /**
   * Tokens stepped at once. Steps of different tokens are independent (each is fenced on its own version), so
   * on a database where every statement is a slow round trip (the Data API) several in flight hide the latency.
   */
  concurrency?: number;
}

/**
 * One processor pass: every due token is stepped once (one node at most). Safe with several processors at once:
 * each outcome is fenced on the token's version, so a token moves once however many step it.
 */
export async function runProcessorPass(
  store: ProcessorStore,
  engine: WorkflowEngine,
  options: ProcessorPassOptions = {},
): Promise<ProcessorPassResult> {
  const batchSize = options.batchSize ?? DEFAULT_PROCESSOR_BATCH_SIZE;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const result: ProcessorPassResult = { stepped: 0, committed: 0, lostRaces: 0, queued: 0, announced: 0 };
  for (let batch = 0; batch < MAX_BATCHES_PER_PASS; batch++) {
    const tokens = await store.listDueTokens(batchSize);
    if (tokens.length === 0) break;
    const before = result.committed;
    try {
      await stepInChains(store, engine, tokens, concurrency, result);
      await store.wakeWaiters();
    } finally {
      store.clearPrefetch();
    }
    if (tokens.length < batchSize || result.committed === before) break;
  }
  // Only in a pass that moved nothing (the last of every busy run, and any pass with no work): a pass that commits is
  // followed by another at once, and its one read would sit between a command's end and the next command's queueing.
  // An orphan is a finished command whose token is gone; it moves nothing, so the pass after it always archives.
  if (result.committed === 0) await store.archiveOrphanedExecutions();
  return result;
}

/** The steps one token took in a row in one round of stepInChains, written together. */
interface Chain {
  outcomes: StepOutcome[];
  /** Steps the token took in this pass so far. */
  steps: number;
  /** The token to step again once the chain is written (due at once, but its last step cannot be chained on). */
  again?: Token;
  /** The token whose last step changed nothing: put back to sleep once the chain is written. */
  postpone?: Token;
}

/**
 * A step whose next one may be taken before it is written: one that leaves the instance as it was read (the
 * next step reads the instance from the pass's cache), and the token due at once.
 */
function chainsOn(outcome: StepOutcome): Token | undefined {
  return outcome.instancePatch === undefined ? dueAgainAtOnce(outcome) : undefined;
}

/**
 * Steps the batch in rounds. In a round, each token takes its steps in a row while each leaves it due at once (a
 * finished command archived and the next one queued, noop after noop), staged in the store rather than written;
 * then every token's chain is written at once (commitChains) in one transaction, each chain fenced
 * on the version its first step read (issue 18: a commit per step was most of a no-op job's cost). A token whose
 * last step could not be chained on (it patched the instance) goes on in the next round.
 */
async function stepInChains(
  store: ProcessorStore,
  engine: WorkflowEngine,
  tokens: readonly Token[],
  concurrency: number,
  result: ProcessorPassResult,
): Promise<void> {
  let round = tokens.map((token) => ({ token, steps: 0 }));
  while (round.length > 0) {
    const chains: Chain[] = [];
    let next = 0;
    const worker = async () => {
      while (next < round.length) {
        const unit = round[next++]!;
        const chain: Chain = { outcomes: [], steps: unit.steps };
        let token: Token | undefined = unit.token;
        while (token !== undefined && chain.steps < MAX_STEPS_PER_TOKEN) {
          chain.steps++;
          result.stepped++;
          const outcome = await engine.step(token);
          if (!outcome) {
            if (chain.outcomes.length === 0) await store.postpone(token);
            else chain.postpone = token;
            break;
          }
          chain.outcomes.push(outcome);
          const chained = store.stage ? chainsOn(outcome) : undefined;
          if (chained === undefined) {
            chain.again = dueAgainAtOnce(outcome);
            break;
          }
          store.stage!(outcome);
          token = chained;
        }
        if (chain.outcomes.length > 0) chains.push(chain);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, round.length) }, worker));
    // One transaction for the round on every dialect. Parallel ones deadlocked on MariaDB's gap locks of the
    // instance-end deletes, and on the Data API stand-in 16 at once stalled for good (bench:engine: 0 noop steps/s).
    const written = await store.commitChains(chains.map((c) => c.outcomes));
    round = [];
    for (const [i, chain] of chains.entries()) {
      if (!written[i]) {
        result.lostRaces++;
        continue;
      }
      result.committed += chain.outcomes.length;
      noteQueued(result, chain.outcomes);
      result.announced += chain.outcomes.reduce((n, o) => n + announcedBy(o), 0);
      if (chain.postpone) await store.postpone(chain.postpone);
      if (chain.again && chain.steps < MAX_STEPS_PER_TOKEN) round.push({ token: chain.again, steps: chain.steps });
    }
  }
}
