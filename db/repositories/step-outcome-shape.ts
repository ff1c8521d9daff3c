/** What a step outcome asks of its commit: a transaction or not, and how many ids. */
import type { StepOutcome } from '../../core/ports';

/** Ids one launch hands out: token, two events, two log lines, and a spare. */
const IDS_PER_LAUNCH = 6;

/** Ids a transactional commit may hand out: its logs and signals, and each launch's instance rows. */
export function idsFor(outcome: StepOutcome): number {
  return outcome.logs.length + outcome.kills.length + outcome.launches.length * IDS_PER_LAUNCH;
}

/** Outcomes beyond "move the token, log, queue its command" must commit atomically with their events. */
export function needsTransaction(outcome: StepOutcome): boolean {
  return (
    outcome.instancePatch !== undefined ||
    outcome.deleteInstanceTokens === true ||
    outcome.newTokens.length > 0 ||
    outcome.archivedExecution !== undefined ||
    outcome.kills.length > 0 ||
    outcome.launches.length > 0 ||
    outcome.events.length > 0 ||
    outcome.token === null
  );
}
