/**
 * Memory use of a command's process group, read from /proc (Kuroko2's MemorySampler summed `ps` RSS over
 * the group). Linux only: elsewhere the sample is undefined.
 */
import { readFileSync } from 'node:fs';
import { listProcessGroupMembers } from './proc';

const MS_PER_SECOND = 1000;
/** Kuroko2's throttle bounds: at least 1 s, at most 30 min between samples. */
const MIN_INTERVAL_SECONDS = 1;
const MAX_INTERVAL_SECONDS = 1800;
const VM_RSS_LINE = /^VmRSS:\s+(\d+)\s+kB$/m;

/**
 * Resident memory of the live members of a process group, in KB; undefined when the group has no
 * member left (or /proc cannot be read).
 */
export function sampleProcessGroupRss(pgid: number): number | undefined {
  const members = listProcessGroupMembers(pgid);
  if (members === undefined) return undefined;
  let totalKb = 0;
  let measured = 0;
  for (const pid of members) {
    const kb = readRssKb(pid);
    if (kb === undefined) continue;
    totalKb += kb;
    measured++;
  }
  return measured === 0 ? undefined : totalKb;
}

/** VmRSS of one process in KB, avoiding statm's page-size arithmetic (Node cannot read the page size). */
function readRssKb(pid: number): number | undefined {
  try {
    const match = VM_RSS_LINE.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    // The process exited between listing and reading.
    return undefined;
  }
}

/**
 * How long to wait before the next sample once sampleCount samples were taken: Kuroko2's
 * clamp(count², 1 s, 1800 s), so 1, 1, 4, 9 ... seconds, up to 30 minutes.
 */
export function sampleIntervalMs(sampleCount: number): number {
  if (Number.isNaN(sampleCount)) return MAX_INTERVAL_SECONDS * MS_PER_SECOND;
  const count = Math.max(0, Math.floor(sampleCount));
  const seconds = Math.min(Math.max(count * count, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS);
  return seconds * MS_PER_SECOND;
}
