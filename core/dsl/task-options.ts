import { DEFAULT_QUEUE, WAIT_PERIODS } from '../model';
import type { WaitPeriod } from '../model';

/**
 * The outcome of reading a task option. `offset` (0-based, into the option text) marks where the problem
 * starts when it is narrower than the whole option, so the validator can point at it.
 */
export type OptionResult<T> = { ok: true; value: T } | { ok: false; message: string; offset?: number };

/** Upper bound of `parallel_fork: N` (D4): each branch is a token and a process, so a typo must not spawn thousands. */
export const MAX_PARALLEL_FORK = 100;

/** Default `wait:` timeout in minutes (Kuroko2's). */
export const DEFAULT_WAIT_TIMEOUT_MINUTES = 60;

const MINUTES_PER_HOUR = 60;
const QUEUE_NAME = /^@?[\w-]{1,180}$/;
const MINUTES = /^(\d+)([hm])?$/;
const DIGITS = /^\d+$/;
const AUTO_SKIP_TRUE = new Set(['true', '1', 'TRUE']);
/** ASCII blanks, as Ruby's `\s` in Kuroko2's option scanners. */
const BLANK = /[ \t\n\v\f\r]/;

function ok<T>(value: T): OptionResult<T> {
  return { ok: true, value };
}

function fail<T>(message: string, offset?: number): OptionResult<T> {
  return offset === undefined ? { ok: false, message } : { ok: false, message, offset };
}

function show(option: string | null): string {
  return option === null ? 'nothing' : `\`${option}\``;
}

/** Reads a whole number that fits a safe integer, or undefined. */
function safeNumber(digits: string): number | undefined {
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** One `KEY=` value of `env:`: a quoted literal (with its own quote escapable) or a run of non-blanks. */
function scanEnvValue(text: string, start: number): { value: string; end: number } | { error: string; at: number } {
  const quote = text[start];
  if (quote !== '"' && quote !== "'") {
    let end = start;
    while (end < text.length && !BLANK.test(text[end] as string)) end++;
    if (end === start) return { error: 'a value must follow `=` (write `KEY=""` for an empty value)', at: start };
    return { value: text.slice(start, end), end };
  }
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const char = text[i] as string;
    if (char === quote) return { value, end: i + 1 };
    if (char === '\\' && i + 1 < text.length) {
      const next = text[i + 1] as string;
      // Only the quote itself is unescaped (Kuroko2); any other pair is kept as written.
      value += next === quote ? next : char + next;
      i++;
      continue;
    }
    value += char;
  }
  return { error: `unterminated ${quote} quote`, at: start };
}

/**
 * Reads `env: K=V K2="a b" K3='c \'d'` into a map (later keys win); a null or blank option is the empty map.
 */
export function parseEnvOption(option: string | null): OptionResult<Record<string, string>> {
  const env: Record<string, string> = {};
  if (option === null) return ok(env);
  let i = 0;
  while (i < option.length) {
    if (BLANK.test(option[i] as string)) {
      i++;
      continue;
    }
    const key = /^\w+=/.exec(option.slice(i));
    if (key === null) return fail(`expected KEY=VALUE at \`${option.slice(i)}\``, i);
    const scanned = scanEnvValue(option, i + key[0].length);
    if ('error' in scanned) return fail(`${scanned.error} in \`${option.slice(i)}\``, scanned.at);
    env[key[0].slice(0, -1)] = scanned.value;
    i = scanned.end;
  }
  return ok(env);
}

/** Reads `N`, `Nm` or `Nh` as minutes (`timeout:`, `expected_time:`). */
export function parseMinutesOption(option: string | null): OptionResult<number> {
  const match = option === null ? null : MINUTES.exec(option);
  if (match === null) return fail(`expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got ${show(option)}`);
  const amount = safeNumber(match[1] as string);
  const minutes = amount === undefined ? undefined : match[2] === 'h' ? amount * MINUTES_PER_HOUR : amount;
  if (minutes === undefined || !Number.isSafeInteger(minutes)) return fail(`${show(option)} is too large`);
  return ok(minutes);
}

/** Reads `sleep: N` as seconds. */
export function parseSleepOption(option: string | null): OptionResult<number> {
  if (option === null || !DIGITS.test(option)) return fail(`expected a number of seconds, got ${show(option)}`);
  const seconds = safeNumber(option);
  return seconds === undefined ? fail(`${show(option)} is too large`) : ok(seconds);
}

/** Reads `auto_skip_error:`: `true`, `1` or `TRUE` is true, anything else false. Never fails. */
export function parseAutoSkipErrorOption(option: string | null): OptionResult<boolean> {
  return ok(option !== null && AUTO_SKIP_TRUE.has(option.trim()));
}

/** Reads `queue: name` (`@?[\w-]{1,180}`); a null or blank option means the default queue. */
export function parseQueueOption(option: string | null): OptionResult<string> {
  const name = option?.trim() ?? '';
  if (name === '') return ok(DEFAULT_QUEUE);
  if (!QUEUE_NAME.test(name)) {
    return fail(`${show(name)} is not a queue name: use 1 to 180 letters, digits, \`_\` or \`-\`, optionally after \`@\``);
  }
  return ok(name);
}

/** Reads `parallel_fork: N`, the number of branches, 1 to {@link MAX_PARALLEL_FORK} (D4). */
export function parseParallelForkOption(option: string | null): OptionResult<number> {
  if (option === null || !DIGITS.test(option)) return fail(`expected a number of branches, got ${show(option)}`);
  const size = safeNumber(option);
  if (size === 0) return fail(`0 would start no branch and never finish; give 1 to ${MAX_PARALLEL_FORK}`);
  if (size === undefined || size > MAX_PARALLEL_FORK) {
    return fail(`${option} exceeds the limit of ${MAX_PARALLEL_FORK} branches`);
  }
  return ok(size);
}

/** Reads `sub_process: <definition id>`. */
export function parseSubProcessOption(option: string | null): OptionResult<number> {
  if (option === null || !DIGITS.test(option)) return fail(`expected a job definition id, got ${show(option)}`);
  const id = safeNumber(option);
  if (id === undefined || id === 0) return fail(`${show(option)} is not a job definition id`);
  return ok(id);
}

/** One upstream job of `wait:`. */
export interface WaitJobOption {
  readonly definitionId: number;
  readonly period: WaitPeriod;
  /** 0-based offset of the item in the option, for error locations. */
  readonly offset: number;
}

/** What `wait:` waits for, and for how long (minutes). */
export interface WaitOption {
  readonly jobs: readonly WaitJobOption[];
  readonly timeoutMinutes: number;
}

const WAIT_NEEDS_A_JOB = 'expected at least one `<definition id>/<hourly|daily|weekly|monthly>`';
const WAIT_SEPARATOR = /^(?:[ \t\n\v\f\r]+|,)/;
const WAIT_ITEM = new RegExp(`^(\\d+)[ \\t\\v\\f\\r]*/[ \\t\\v\\f\\r]*(${WAIT_PERIODS.join('|')})`);
const WAIT_TIMEOUT = /^timeout=(\d+)([hm])?/;

/**
 * Reads `wait: 100/daily 101/hourly timeout=2h`: items split by blanks or commas (Kuroko2 lets `100 / daily`
 * through too), at least one job, timeout in minutes defaulting to 60.
 */
export function parseWaitOption(option: string | null): OptionResult<WaitOption> {
  if (option === null) return fail(WAIT_NEEDS_A_JOB);
  const jobs: WaitJobOption[] = [];
  let timeoutMinutes = DEFAULT_WAIT_TIMEOUT_MINUTES;
  let i = 0;
  while (i < option.length) {
    const rest = option.slice(i);
    const separator = WAIT_SEPARATOR.exec(rest);
    const item = WAIT_ITEM.exec(rest);
    const timeout = WAIT_TIMEOUT.exec(rest);
    if (separator !== null) {
      i += separator[0].length;
    } else if (item !== null) {
      const definitionId = safeNumber(item[1] as string);
      if (definitionId === undefined || definitionId === 0) return fail(`\`${item[1]}\` is not a job definition id`, i);
      jobs.push({ definitionId, period: item[2] as WaitPeriod, offset: i });
      i += item[0].length;
    } else if (timeout !== null) {
      const minutes = parseMinutesOption(`${timeout[1]}${timeout[2] ?? ''}`);
      if (!minutes.ok) return fail(`timeout: ${minutes.message}`, i);
      timeoutMinutes = minutes.value;
      i += timeout[0].length;
    } else {
      const word = /^[^ \t\n\v\f\r,]*/.exec(rest)?.[0] ?? rest;
      return fail(
        `\`${word}\` is neither \`<definition id>/<hourly|daily|weekly|monthly>\` nor \`timeout=N|Nm|Nh\``,
        i,
      );
    }
  }
  if (jobs.length === 0) return fail(WAIT_NEEDS_A_JOB);
  return ok({ jobs, timeoutMinutes });
}

/** What `retry:` allows each direct child: `count` automatic retries, `sleepTime` seconds before each. */
export interface RetryOption {
  readonly count: number;
  readonly sleepTime: number;
}

const RETRY_NEEDS_COUNT = '`count=N` is required (`sleep_time=S` is optional)';
const RETRY_SEPARATOR = WAIT_SEPARATOR;
const RETRY_ITEM = /^(count|sleep_time)=(\d+)/;

/** Reads `retry: count=N [sleep_time=S]` (blank or comma separated; count required, sleep_time defaults to 0). */
export function parseRetryOption(option: string | null): OptionResult<RetryOption> {
  if (option === null) return fail(RETRY_NEEDS_COUNT);
  let count: number | undefined;
  let sleepTime = 0;
  let i = 0;
  while (i < option.length) {
    const rest = option.slice(i);
    const separator = RETRY_SEPARATOR.exec(rest);
    const item = RETRY_ITEM.exec(rest);
    if (separator !== null) {
      i += separator[0].length;
    } else if (item !== null) {
      const value = safeNumber(item[2] as string);
      if (value === undefined) return fail(`\`${item[0]}\` is too large`, i);
      if (item[1] === 'count') count = value;
      else sleepTime = value;
      i += item[0].length;
    } else {
      const word = /^[^ \t\n\v\f\r,]*/.exec(rest)?.[0] ?? rest;
      return fail(`\`${word}\` is neither \`count=N\` nor \`sleep_time=S\``, i);
    }
  }
  if (count === undefined) return fail(RETRY_NEEDS_COUNT);
  return ok({ count, sleepTime });
}

/** Reads `rails_env: name`: any non-blank environment name, kept for compatibility (sets `RAILS_ENV`). */
export function parseRailsEnvOption(option: string | null): OptionResult<string> {
  const name = option?.trim() ?? '';
  return name === '' ? fail('expected an environment name') : ok(name);
}
