/** The "Launched by" text of a scheduled instance, in Kuroko2's shape (Kuroko2 4.1, 4.4). */
import { formatOffset, instantsOfWall, MS_PER_MINUTE, wallOf, zoneClock } from './time-zone';

const TWO_DIGITS = 2;

function pad(n: number): string {
  return String(n).padStart(TWO_DIGITS, '0');
}

/**
 * `"#<id> <name>" that is scheduled at <yyyy-mm-dd HH:MM zone> by \`<cron>\``, with the slot in the
 * definition's zone. A wall time that a DST fall-back repeats also names its offset, so the two are told apart.
 */
export function scheduledLaunchedBy(definition: { id: number; name: string }, slot: Date, cron: string, timeZone: string): string {
  const zone = zoneClock(timeZone);
  const wall = wallOf(zone, slot.getTime());
  const w = new Date(wall);
  let at = `${w.getUTCFullYear()}-${pad(w.getUTCMonth() + 1)}-${pad(w.getUTCDate())} ${pad(w.getUTCHours())}:${pad(w.getUTCMinutes())} ${timeZone}`;
  const minuteWall = Math.floor(wall / MS_PER_MINUTE) * MS_PER_MINUTE;
  if (instantsOfWall(zone, minuteWall).length > 1) at += ` (UTC${formatOffset(zone.offsetMinutes(slot.getTime()))})`;
  return `"#${definition.id} ${definition.name}" that is scheduled at ${at} by \`${cron}\``;
}
