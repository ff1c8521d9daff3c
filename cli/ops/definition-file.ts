/**
 * A job definition as a file a human edits and keeps in git (`kuroko definitions export|apply`): a header of
 * `# key: value` comment lines between `# --- kuroko definition` and `# ---`, then the script exactly as it is.
 * The header is a comment block, so the file is also a script `kuroko validate` reads (its lines keep their numbers).
 *
 *   # --- kuroko definition: edit the settings here and the script below, then `kuroko definitions apply`
 *   # name: nightly-report
 *   # cron: ["0 3 * * *"]
 *   # tags: ["reports"]
 *   # ---
 *   execute: ./report.sh
 *
 * Values: strings as they are (in JSON quotes when they need them: empty, a newline, spaces at an end, a leading
 * quote, or the word null), lists as JSON arrays, true/false, integers, null. format(parse(text)) is the text.
 */

export const HEADER_START = '# --- kuroko definition';
const HEADER_START_LINE = `${HEADER_START}: edit the settings here and the script below, then \`kuroko definitions apply\``;
const HEADER_END = '# ---';
export const DEFINITION_FILE_EXTENSION = '.kuroko';

type Kind = 'string' | 'nullableString' | 'list' | 'boolean' | 'integer';

/** The settings a file holds, in the order it writes them (the API resource's field names). */
export const SETTINGS = {
  name: 'string',
  description: 'string',
  cron: 'list',
  suspend_cron: 'list',
  time_zone: 'string',
  tags: 'list',
  prevent_multi: 'integer',
  catch_up_window_minutes: 'integer',
  notify_cancellation: 'boolean',
  hipchat_notify_finished: 'boolean',
  api_allowed: 'boolean',
  slack_channel: 'string',
  webhook_url: 'nullableString',
} as const satisfies Record<string, Kind>;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue = string | string[] | boolean | number | null;

export interface DefinitionFile {
  /** The settings the header holds; a key left out is not managed by the file (the deployed value stays). */
  settings: Partial<Record<SettingKey, SettingValue>> & { name: string };
  script: string;
  /** Lines before the script's first line, to turn a script line into a file line. */
  headerLines: number;
}

/** A problem with a file, at a line of it. */
export class DefinitionFileError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'DefinitionFileError';
  }
}

// eslint-disable-next-line no-control-regex
const NEEDS_QUOTES = /[\u0000-\u001f\u007f\u2028\u2029]/;

function formatString(value: string): string {
  const plain = value !== '' && value === value.trim() && !value.startsWith('"') && value !== 'null' && !NEEDS_QUOTES.test(value);
  return plain ? value : JSON.stringify(value);
}

function formatValue(kind: Kind, value: SettingValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
  if (kind === 'string' || kind === 'nullableString') return formatString(String(value));
  return String(value);
}

/** The file's text. */
export function formatDefinitionFile(settings: DefinitionFile['settings'], script: string): string {
  const lines = [HEADER_START_LINE];
  for (const [key, kind] of Object.entries(SETTINGS) as [SettingKey, Kind][]) {
    const value = settings[key];
    if (value !== undefined) lines.push(`# ${key}: ${formatValue(kind, value)}`);
  }
  lines.push(HEADER_END);
  return `${lines.join('\n')}\n${script}`;
}

function parseValue(kind: Kind, raw: string, line: number, key: string): SettingValue {
  const fail = (expected: string): never => {
    throw new DefinitionFileError(line, `${key}: expected ${expected}, got ${raw === '' ? 'nothing' : raw}`);
  };
  const json = (): unknown => {
    try {
      return JSON.parse(raw);
    } catch {
      return fail(kind === 'list' ? 'a JSON list of strings like ["a", "b"]' : 'a JSON string in double quotes');
    }
  };
  switch (kind) {
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : fail('true or false');
    case 'integer':
      return /^-?\d{1,9}$/.test(raw) ? Number(raw) : fail('an integer');
    case 'list': {
      const value = json();
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : fail('a JSON list of strings like ["a", "b"]');
    }
    case 'nullableString':
      if (raw === 'null') return null;
      return raw.startsWith('"') ? (json() as string) : raw;
    case 'string':
      if (raw === 'null') return fail('a string (write "null" in quotes for the word)');
      return raw.startsWith('"') ? (json() as string) : raw;
  }
}

/** Reads a file's text; throws DefinitionFileError at the line that is wrong. */
export function parseDefinitionFile(text: string): DefinitionFile {
  if (!text.startsWith(HEADER_START)) throw new DefinitionFileError(1, `the first line must start with "${HEADER_START}"`);
  const settings: Partial<Record<SettingKey, SettingValue>> = {};
  let pos = text.indexOf('\n') + 1;
  let line = 1;
  if (pos === 0) throw new DefinitionFileError(1, `no "${HEADER_END}" line ends the settings`);
  for (;;) {
    line++;
    const end = text.indexOf('\n', pos);
    const current = end < 0 ? text.slice(pos) : text.slice(pos, end);
    if (current === HEADER_END) {
      pos = end < 0 ? text.length : end + 1;
      break;
    }
    if (end < 0) throw new DefinitionFileError(line, `no "${HEADER_END}" line ends the settings`);
    pos = end + 1;
    if (current.trim() === '#') continue;
    const match = /^# ([a-z_]+):(?: (.*))?$/.exec(current);
    if (!match) throw new DefinitionFileError(line, 'expected "# key: value" or the closing "# ---"');
    const key = match[1] as string;
    if (!Object.hasOwn(SETTINGS, key)) throw new DefinitionFileError(line, `unknown setting ${key} (known: ${Object.keys(SETTINGS).join(', ')})`);
    if (Object.hasOwn(settings, key)) throw new DefinitionFileError(line, `${key} is given twice`);
    settings[key as SettingKey] = parseValue(SETTINGS[key as SettingKey], (match[2] ?? '').trim(), line, key);
  }
  const name = settings.name;
  if (typeof name !== 'string' || name === '') throw new DefinitionFileError(1, 'the settings need a name (# name: ...)');
  return { settings: { ...settings, name }, script: text.slice(pos), headerLines: line };
}

/** A file name for a definition name: letters, digits, `.`, `_` and `-` kept, anything else `_`. */
export function fileNameFor(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return `${safe || '_'}${DEFINITION_FILE_EXTENSION}`;
}
