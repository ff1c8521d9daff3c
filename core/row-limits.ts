/**
 * How wide a row may grow, in UTF-8 bytes. The RDS Data API fails any result set holding a row over 64 KB
 * ("Packet for query is too large") and any response over 1 MiB
 * (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html), so every text a user
 * or a command can make long is bounded here: user input is refused with a 422 naming the limit, and what the
 * system writes itself (output excerpts, log lines, event messages, delivery errors) is cut on a character
 * boundary with a marker. Characters are not bytes: a Japanese character takes 3, an emoji 4.
 *
 * The budgets add up per table, with room left for the narrow columns:
 * - job_definitions: description 16 KiB + script 16 KiB;
 * - job_instances / tokens: script 16 KiB + launch env 8 KiB (+ the env lines of the script, part of its 16 KiB)
 *   + token message 4 KiB;
 * - executions: command (part of the script) + env (launch env and the script's env lines) + output head 8 KiB
 *   + output tail 8 KiB;
 * - instance_logs: 40 KiB (a result line holds the command and both output excerpts); events: 16 KiB;
 *   event_deliveries.last_error: 2 KiB.
 */

const KIB = 1024;

/** The Data API's per-row limit of a result set (64 KB). */
export const DATA_API_MAX_ROW_BYTES = 64 * KIB;
/** The Data API's per-response limit (1 MiB). */
export const DATA_API_MAX_RESPONSE_BYTES = 1024 * KIB;
/** ExecuteStatement's `sql`: at most 65,536 characters (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html). */
export const DATA_API_MAX_SQL_CHARS = 65_536;

/** Byte budgets of the wide columns. */
export const ROW_LIMITS = {
  /** A definition's Markdown description. */
  descriptionBytes: 16 * KIB,
  /** A definition's script, or an ad-hoc script given at launch. */
  scriptBytes: 16 * KIB,
  /** The environment given at launch, as the JSON stored with the instance. */
  launchEnvBytes: 8 * KIB,
  /** The first bytes of a command's output kept with its execution. */
  outputHeadBytes: 8 * KIB,
  /** The last bytes of a command's output kept with its execution. */
  outputTailBytes: 8 * KIB,
  /** One instance log line. */
  logMessageBytes: 40 * KIB,
  /** One event's message. */
  eventMessageBytes: 16 * KIB,
  /** A token's message (the reason it failed). */
  tokenMessageBytes: 4 * KIB,
  /** The error of a delivery's last failed attempt. */
  deliveryErrorBytes: 2 * KIB,
} as const;

/** Appended where text was cut to fit its column. */
export const TRUNCATION_MARKER = '\n… (truncated to fit the database row) …';

/** UTF-8 bytes of a string (a lone surrogate counts as U+FFFD, 3 bytes, as encoders write it). */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** The longest prefix of whole characters (never half a surrogate pair) within maxBytes. */
export function prefixWithinBytes(text: string, maxBytes: number): string {
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    let units = 1;
    let size: number;
    if (code < 0x80) size = 1;
    else if (code < 0x800) size = 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff) {
      size = 4;
      units = 2;
    } else size = 3;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += units;
  }
  return text.slice(0, i);
}

/**
 * The text itself when it fits maxBytes; otherwise its longest prefix that fits together with the marker, and the
 * marker. The result never exceeds maxBytes.
 */
export function truncateUtf8(text: string, maxBytes: number, marker: string = TRUNCATION_MARKER): string {
  // A UTF-16 unit never takes more than 3 bytes, so short texts need no counting.
  if (text.length * 3 <= maxBytes || utf8Bytes(text) <= maxBytes) return text;
  const markerBytes = utf8Bytes(marker);
  if (markerBytes >= maxBytes) return prefixWithinBytes(text, maxBytes);
  return prefixWithinBytes(text, maxBytes - markerBytes) + marker;
}

/** The last bytes of a text, cut on a character boundary, at most maxBytes. */
export function suffixWithinBytes(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  let bytes = 0;
  let i = text.length;
  while (i > 0) {
    const code = text.charCodeAt(i - 1);
    let units = 1;
    let size: number;
    if (code < 0x80) size = 1;
    else if (code < 0x800) size = 2;
    else if (code >= 0xdc00 && code <= 0xdfff && i >= 2 && text.charCodeAt(i - 2) >= 0xd800 && text.charCodeAt(i - 2) <= 0xdbff) {
      size = 4;
      units = 2;
    } else size = 3;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i -= units;
  }
  return text.slice(i);
}

/** The 422 message for user input over its byte budget. */
export function tooManyBytes(bytes: number, max: number): string {
  return `is too long: ${bytes} bytes of UTF-8 (maximum is ${max} bytes; a Japanese character takes 3)`;
}

/** Bytes of the JSON an environment map is stored as. */
export function envJsonBytes(env: Readonly<Record<string, string>>): number {
  return utf8Bytes(JSON.stringify(env));
}
