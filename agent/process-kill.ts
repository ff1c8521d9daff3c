/**
 * Signals to whole process groups (invariant 5): SIGTERM, then SIGKILL once a grace period passed with any member
 * left (a grandchild can outlive its parent, so the group is watched, not the leader); any other signal is passed
 * once, without escalation. Also words the outcome for the process_signals row's `result`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../core/errors';
import { errnoCode, isProcessGroupAlive } from './proc';

/** How often `killProcessGroup` looks at the group while waiting for it to empty. */
const KILL_POLL_MS = 25;
/** How long `killProcessGroup` waits for the group to vanish after SIGKILL, which cannot be ignored. */
const KILL_SETTLE_MS = 5_000;

export interface KillOutcome {
  termSent: boolean;
  killSent: boolean;
  /** Whether the group was seen empty when kill resolved. */
  groupEmpty: boolean;
  error?: string;
}

export function nothingToKill(): KillOutcome {
  return { termSent: false, killSent: false, groupEmpty: true };
}

/** SIGTERM to every process of the group, then SIGKILL once graceMs has passed with any member left. */
export async function killProcessGroup(pgid: number, graceMs: number): Promise<KillOutcome> {
  if (!isProcessGroupAlive(pgid)) return nothingToKill();
  const term = signalGroup(pgid, 'SIGTERM');
  if (term.error !== undefined) return { termSent: false, killSent: false, groupEmpty: false, error: term.error };
  if (!term.sent || (await waitForEmptyGroup(pgid, graceMs))) {
    return { termSent: term.sent, killSent: false, groupEmpty: true };
  }
  const kill = signalGroup(pgid, 'SIGKILL');
  if (kill.error !== undefined) return { termSent: true, killSent: false, groupEmpty: false, error: kill.error };
  const groupEmpty = !kill.sent || (await waitForEmptyGroup(pgid, KILL_SETTLE_MS));
  return { termSent: true, killSent: kill.sent, groupEmpty };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): { sent: boolean; error?: string } {
  try {
    process.kill(-pgid, signal);
    return { sent: true };
  } catch (error) {
    // ESRCH: the group emptied between the check and the signal, which is what we wanted.
    if (errnoCode(error) === 'ESRCH') return { sent: false };
    return { sent: false, error: `${signal} to process group ${pgid} failed: ${errorMessage(error)}` };
  }
}

async function waitForEmptyGroup(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + Math.max(0, timeoutMs);
  for (;;) {
    if (!isProcessGroupAlive(pgid)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await sleep(Math.min(KILL_POLL_MS, left));
  }
}

/** Passes any other signal once to the whole group, without escalation; says what happened. */
export function passSignal(pgid: number, signal: string): string {
  try {
    process.kill(-pgid, signal as NodeJS.Signals);
    return `${signal} sent to process group ${pgid}`;
  } catch (error) {
    return `failed: ${signal} to process group ${pgid}: ${errorMessage(error)}`;
  }
}

/** Says what a group kill (TERM, then KILL after graceMs) did, for the signal row's `result`. */
export function describeKill(pgid: number, graceMs: number, outcome: KillOutcome): string {
  if (outcome.error !== undefined) return `failed: ${outcome.error}`;
  if (!outcome.termSent && !outcome.killSent) return `process group ${pgid} had already ended`;
  const sent = outcome.killSent ? `SIGTERM, then SIGKILL after ${graceMs} ms,` : 'SIGTERM';
  return `${sent} sent to process group ${pgid}; ${outcome.groupEmpty ? 'the group ended' : 'the group is still alive'}`;
}
