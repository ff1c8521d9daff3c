/**
 * The claim loop: every poll interval (adaptive with hotPollMs: core/poll-pace.ts), or at once when woken (wake(): a finished command freed a slot, the local
 * mode queued a command, a doorbell rang), claims up to the free slots' worth of executions of the agent's queues
 * and hands each to the job runner. Database errors back off exponentially.
 *
 * A failed claim may have committed anyway (a connection killed during COMMIT, a Data API commit call that timed
 * out): for a lease's length after one, the loop looks for executions claimed under this agent's worker ids that it
 * does not run and puts them back in the queue, since nothing else would ever recover them.
 *
 * With an idle timeout, the loop asks the agent to stop once nothing ran for that long (and mayStopIdle agrees).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { errorMessage } from '../core/errors';
import { DEFAULT_HOT_WINDOW_MS, nextPollMs } from '../core/poll-pace';
import type { Execution } from '../core/model';
import type { ExecutionQueueRepository } from '../db/repositories/execution-queue-repository';
import type { AgentControl, AgentSettings } from './agent-settings';
import { backoffMs } from './fenced-writes';
import type { JobTable } from './job';
import { Waker } from './waker';
import type { WorkerIdentity } from './worker-identity';

/** Hinted executions kept for the next claim at most (it takes up to its free slots' worth). */
const MAX_HINTS = 100;

export interface ClaimLoopParts {
  settings: AgentSettings;
  queue: ExecutionQueueRepository;
  identity: WorkerIdentity;
  jobs: JobTable;
  control: AgentControl;
  launch: (execution: Execution, leaseUntil: number) => void;
}

export class ClaimLoop {
  readonly #waker = new Waker();
  #loop: Promise<void> = Promise.resolve();
  /** Until this time (performance.now()) claims whose answer was lost are looked for; undefined when none may be. */
  #claimInDoubtUntil: number | undefined;
  /** Set by wakeForWork(), cleared by the next claim. */
  #workAnnounced = false;
  /** Executions the rings since the last claim named (hints): the next claim tries them by id first. */
  readonly #hints = new Set<number>();

  constructor(private readonly parts: ClaimLoopParts) {}

  start(): void {
    this.#loop = this.#run();
  }

  /** Claims now instead of at the next poll. */
  wake(): void {
    this.#waker.wake();
  }

  /**
   * Claims now, without the probe read: work was announced (a doorbell rang), one round trip less before it runs.
   * The ring may name the executions it announced: the claim tries those by id first (one round trip instead of two).
   */
  wakeForWork(hints: readonly number[] = []): void {
    this.#workAnnounced = true;
    for (const id of hints) if (this.#hints.size < MAX_HINTS) this.#hints.add(id);
    this.#waker.wake();
  }

  /**
   * Ends the loop (the agent is stopping) and releases any claim whose answer was lost just before, or its rows
   * would outlive this worker. Resolves false when that could not be checked.
   */
  async stop(): Promise<boolean> {
    this.#waker.wake();
    await this.#loop;
    return this.#checkLostClaims().then(
      () => true,
      (error: unknown) => {
        this.parts.settings.logger.error('could not look for claims whose answer was lost', { error: errorMessage(error) });
        return false;
      },
    );
  }

  async #run(): Promise<void> {
    const { settings, control } = this.parts;
    let failures = 0;
    while (!control.stopping) {
      try {
        await this.#checkLostClaims();
        await this.#claimOnce();
        failures = 0;
      } catch (error) {
        failures++;
        this.#claimInDoubtUntil = performance.now() + settings.leaseMs;
        settings.logger.error('claim failed; retrying', { error: errorMessage(error), failures });
      }
      if (await this.#idleLongEnough()) {
        settings.logger.info(`idle for ${settings.idleTimeoutMs} ms; stopping`);
        control.stop('idle timeout');
        break;
      }
      if (control.stopping) break;
      await this.#waker.sleep(failures > 0 ? backoffMs(failures, settings.pollIntervalMs) : this.#pollDelayMs());
      // Let the rest of this turn of the event loop happen first: the commands that ended in it free their slots
      // and the processor's pass queues what it queues, so one claim takes them all instead of one claim each.
      await nextTurn();
    }
  }

  /** The fixed poll interval, or with adaptive polling a few milliseconds while work was recently in flight. */
  #pollDelayMs(): number {
    const { settings, jobs } = this.parts;
    // With a doorbell, an idle agent reads nothing until its fallback poll: the ring is what wakes it.
    const pace = { hotMs: settings.hotPollMs, hotWindowMs: DEFAULT_HOT_WINDOW_MS, idleMs: settings.pollIntervalMs, ramp: !settings.doorbell };
    return nextPollMs(pace, jobs.size > 0, performance.now() - jobs.lastBusyAt);
  }

  async #claimOnce(): Promise<void> {
    const { settings, queue, identity, jobs, control } = this.parts;
    // A hint is worth something only now: the ones this claim does not use are left to the ordinary claims.
    const hints = [...this.#hints];
    this.#hints.clear();
    const free = settings.slots - jobs.size;
    const workerId = identity.id;
    if (free <= 0 || identity.suspended || control.stopping || workerId === undefined) return;
    const { hostname, queues, leaseMs, clock } = settings;
    const claimedAt = performance.now();
    // Adaptive polling looks often: a read that finds nothing spares the empty transaction.
    const probeFirst = settings.hotPollMs > 0;
    const expectWork = this.#workAnnounced;
    this.#workAnnounced = false;
    const claimed = await queue.claim({ workerId, hostname, queues, limit: free, leaseMs, now: clock.now(), probeFirst, expectWork, hints });
    // stop() may have begun during the claim; what was claimed is still run and recorded (drain covers it).
    for (const execution of claimed) this.parts.launch(execution, claimedAt + leaseMs);
  }

  async #checkLostClaims(): Promise<void> {
    if (this.#claimInDoubtUntil === undefined) return;
    const checkedAt = performance.now();
    await this.#releaseLostClaims();
    // A commit may land after its call failed (a Data API call that timed out): keep looking for a lease's length.
    if (this.#claimInDoubtUntil !== undefined && checkedAt >= this.#claimInDoubtUntil) this.#claimInDoubtUntil = undefined;
  }

  /**
   * Puts back in the queue the executions claimed under this agent's worker ids that it never launched. Runs between
   * claims, so every claim whose answer arrived is already running; an execution that was launched but whose start
   * and finish were never recorded is left alone (it ran).
   */
  async #releaseLostClaims(): Promise<void> {
    const { queue, identity, jobs, settings } = this.parts;
    const ownIds = [...identity.all];
    const claimed = await queue.claimedWithoutStart(ownIds);
    const lost = claimed.filter((hold) => !jobs.has(hold.id) && !jobs.unsettled.has(hold.id));
    if (lost.length === 0) return;
    const released = await queue.releaseClaims(ownIds, lost);
    settings.logger.warn(`released ${released} execution(s) claimed by a claim whose answer was lost`, {
      executions: lost.map((hold) => hold.id),
    });
  }

  /** Whether the idle timeout is reached and the worker may leave; when it may not, its idle period starts again. */
  async #idleLongEnough(): Promise<boolean> {
    const { settings, identity, jobs, control } = this.parts;
    const { idleTimeoutMs, mayStopIdle } = settings;
    if (idleTimeoutMs === undefined || jobs.size > 0 || performance.now() - jobs.lastBusyAt < idleTimeoutMs || control.stopping) return false;
    const workerId = identity.id;
    if (mayStopIdle === undefined || workerId === undefined) return true;
    let allowed = false;
    try {
      allowed = await mayStopIdle(workerId);
    } catch (error) {
      settings.logger.warn('could not tell whether this idle worker may leave; staying', { error: errorMessage(error) });
    }
    if (!allowed) jobs.markBusy();
    return allowed && jobs.size === 0;
  }
}
