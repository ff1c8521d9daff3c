/**
 * The rules of a job definition, apart from where it is stored: its bounds and defaults, how a create or an update
 * request becomes the whole definition about to be written, and every problem that keeps it from being saved. The
 * repository (db/repositories/definition-repository.ts), the HTTP schemas and the Kuroko2 importer apply them.
 */
import type { ValidationContext } from '../dsl/script-validator';
import { validateScript } from '../dsl/script-validator';
import type { FieldProblem } from '../errors';
import { MAX_RETENTION_DAYS } from '../services/retention-service';
import { PREVENT_MULTI } from '../model';
import type { Definition } from '../model';
import type { CronExpression } from '../schedule';
import { isValidTimeZone, parseCron, validateSuspendSchedules } from '../schedule';
import { ROW_LIMITS, tooManyBytes, utf8Bytes } from '../row-limits';

/** Bounds that keep every value inside its column and every request cheap to validate. */
export const DEFINITION_LIMITS = {
  nameLength: 180,
  /** UTF-8 bytes, not characters: the row must fit the Data API's 64 KB (core/row-limits.ts). */
  descriptionBytes: ROW_LIMITS.descriptionBytes,
  /** UTF-8 bytes of the script. */
  scriptBytes: ROW_LIMITS.scriptBytes,
  tags: 50,
  tagLength: 100,
  crons: 50,
  cronLength: 180,
  slackChannelLength: 81,
  webhookUrlLength: 2048,
  timeZoneLength: 64,
  /** A week: a longer catch-up would launch long-forgotten slots after an outage. */
  catchUpWindowMinutes: 10_080,
  /** A hundred years (retention, migration 0008). */
  retentionDays: MAX_RETENTION_DAYS,
} as const;

/** Kuroko2's column defaults (section 2 of the reference), plus ours for the extensions. */
export const DEFINITION_DEFAULTS = {
  description: '',
  timeZone: 'UTC',
  suspended: false,
  preventMulti: PREVENT_MULTI.workingOrError,
  notifyCancellation: true,
  notifyAll: true,
  apiAllowed: false,
  slackChannel: '',
  webhookUrl: null,
  catchUpWindowMinutes: 60,
} as const;

/** A definition with the lists that belong to it. */
export interface DefinitionRecord extends Definition {
  version: number;
  tags: string[];
  crons: string[];
  suspendCrons: string[];
}

/** The writable fields; absent means "the default" on create and "unchanged" on update. */
export interface DefinitionInput {
  name?: string;
  description?: string;
  script?: string;
  timeZone?: string;
  suspended?: boolean;
  preventMulti?: number;
  notifyCancellation?: boolean;
  notifyAll?: boolean;
  apiAllowed?: boolean;
  slackChannel?: string;
  webhookUrl?: string | null;
  catchUpWindowMinutes?: number;
  /** null: the global retention policy; 0: keep forever. */
  retentionDays?: number | null;
  tags?: string[];
  crons?: string[];
  suspendCrons?: string[];
}

/** Everything a definition will hold once written, before validation. */
export type DefinitionState = Required<Omit<DefinitionInput, 'preventMulti' | 'retentionDays'>> & { preventMulti: number; retentionDays?: number | null };

const SLACK_CHANNEL = /^\S*$/;
const VALID_PREVENT_MULTI: ReadonlySet<number> = new Set(Object.values(PREVENT_MULTI));

function uniqueStrings(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** Trimmed and without repeats. */
export function normalizeTags(tags: readonly string[]): string[] {
  return uniqueStrings(tags.map((t) => t.trim()));
}

/** Stores normalised cron text, so `0  * * * *` and `0 * * * *` are one schedule (a unique key). */
export function normalizeCrons(crons: readonly string[]): string[] {
  return uniqueStrings(crons.map((c) => c.trim().split(/\s+/).join(' ')));
}

/** A new definition: the request's fields, the defaults for the rest. */
export function stateForCreate(input: DefinitionInput): DefinitionState {
  return {
    name: input.name ?? '',
    description: input.description ?? DEFINITION_DEFAULTS.description,
    script: input.script ?? '',
    timeZone: input.timeZone ?? DEFINITION_DEFAULTS.timeZone,
    suspended: input.suspended ?? DEFINITION_DEFAULTS.suspended,
    preventMulti: input.preventMulti ?? DEFINITION_DEFAULTS.preventMulti,
    notifyCancellation: input.notifyCancellation ?? DEFINITION_DEFAULTS.notifyCancellation,
    notifyAll: input.notifyAll ?? DEFINITION_DEFAULTS.notifyAll,
    apiAllowed: input.apiAllowed ?? DEFINITION_DEFAULTS.apiAllowed,
    slackChannel: input.slackChannel ?? DEFINITION_DEFAULTS.slackChannel,
    webhookUrl: input.webhookUrl ?? DEFINITION_DEFAULTS.webhookUrl,
    catchUpWindowMinutes: input.catchUpWindowMinutes ?? DEFINITION_DEFAULTS.catchUpWindowMinutes,
    retentionDays: input.retentionDays ?? null,
    tags: normalizeTags(input.tags ?? []),
    crons: normalizeCrons(input.crons ?? []),
    suspendCrons: normalizeCrons(input.suspendCrons ?? []),
  };
}

/** A changed definition: the request's fields over the current ones; a list present in the request replaces its list. */
export function stateForUpdate(current: DefinitionRecord, input: DefinitionInput): DefinitionState {
  return {
    name: input.name ?? current.name,
    description: input.description ?? current.description,
    script: input.script ?? current.script,
    timeZone: input.timeZone ?? current.timeZone,
    suspended: input.suspended ?? current.suspended,
    preventMulti: input.preventMulti ?? current.preventMulti,
    notifyCancellation: input.notifyCancellation ?? current.notifyCancellation,
    notifyAll: input.notifyAll ?? current.notifyAll,
    apiAllowed: input.apiAllowed ?? current.apiAllowed,
    slackChannel: input.slackChannel ?? current.slackChannel,
    webhookUrl: input.webhookUrl === undefined ? current.webhookUrl : input.webhookUrl,
    catchUpWindowMinutes: input.catchUpWindowMinutes ?? current.catchUpWindowMinutes,
    retentionDays: input.retentionDays === undefined ? (current.retentionDays ?? null) : input.retentionDays,
    tags: input.tags ? normalizeTags(input.tags) : current.tags,
    crons: input.crons ? normalizeCrons(input.crons) : current.crons,
    suspendCrons: input.suspendCrons ? normalizeCrons(input.suspendCrons) : current.suspendCrons,
  };
}

function cronProblems(field: 'cron' | 'suspend_cron', crons: readonly string[]): { problems: FieldProblem[]; parsed: CronExpression[] } {
  const problems: FieldProblem[] = [];
  const parsed: CronExpression[] = [];
  if (crons.length > DEFINITION_LIMITS.crons) problems.push({ field, message: `has ${crons.length} expressions; at most ${DEFINITION_LIMITS.crons} are allowed` });
  for (const expr of crons) {
    if (expr.length > DEFINITION_LIMITS.cronLength) {
      problems.push({ field, message: `an expression is longer than ${DEFINITION_LIMITS.cronLength} characters` });
      continue;
    }
    const result = parseCron(expr);
    if (result.ok) parsed.push(result.cron);
    else problems.push({ field, message: result.message });
  }
  return { problems, parsed };
}

function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const protocol = new URL(text).protocol;
  return protocol === 'http:' || protocol === 'https:';
}

/**
 * Every problem of a definition about to be written, empty when it may be saved. The script is checked only when
 * `checkScript` is set (it changed): an unchanged script was valid when saved, and a queue whose on-demand workers
 * are all stopped must not make an unrelated edit fail.
 */
export function validateDefinitionState(state: DefinitionState, context: ValidationContext, checkScript: boolean): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const name = state.name.trim();
  if (name === '') problems.push({ field: 'name', message: "can't be blank" });
  else if (name.length > DEFINITION_LIMITS.nameLength) problems.push({ field: 'name', message: `is too long (maximum is ${DEFINITION_LIMITS.nameLength} characters)` });
  const descriptionBytes = utf8Bytes(state.description);
  if (descriptionBytes > DEFINITION_LIMITS.descriptionBytes) {
    problems.push({ field: 'description', message: tooManyBytes(descriptionBytes, DEFINITION_LIMITS.descriptionBytes) });
  }
  if (state.script.trim() === '') problems.push({ field: 'script', message: "can't be blank" });
  else if (checkScript) {
    const scriptBytes = utf8Bytes(state.script);
    if (scriptBytes > DEFINITION_LIMITS.scriptBytes) problems.push({ field: 'script', message: tooManyBytes(scriptBytes, DEFINITION_LIMITS.scriptBytes) });
    for (const p of validateScript(state.script, context)) problems.push({ field: 'script', line: p.line, column: p.column, message: p.message });
  }
  if (!VALID_PREVENT_MULTI.has(state.preventMulti)) problems.push({ field: 'prevent_multi', message: `must be 0, 1, 2 or 3, not ${state.preventMulti}` });
  if (state.timeZone.length > DEFINITION_LIMITS.timeZoneLength || !isValidTimeZone(state.timeZone)) {
    problems.push({ field: 'time_zone', message: `\`${state.timeZone.slice(0, DEFINITION_LIMITS.timeZoneLength)}\` is not an IANA time zone` });
  }
  if (state.slackChannel.length > DEFINITION_LIMITS.slackChannelLength || !SLACK_CHANNEL.test(state.slackChannel)) {
    problems.push({ field: 'slack_channel', message: `must be a channel name without spaces, at most ${DEFINITION_LIMITS.slackChannelLength} characters` });
  }
  if (state.webhookUrl !== null && state.webhookUrl !== '') {
    if (state.webhookUrl.length > DEFINITION_LIMITS.webhookUrlLength || !isHttpUrl(state.webhookUrl)) {
      problems.push({ field: 'webhook_url', message: 'must be an http or https URL' });
    }
  }
  const window = state.catchUpWindowMinutes;
  if (!Number.isInteger(window) || window < 0 || window > DEFINITION_LIMITS.catchUpWindowMinutes) {
    problems.push({ field: 'catch_up_window_minutes', message: `must be an integer from 0 to ${DEFINITION_LIMITS.catchUpWindowMinutes}` });
  }
  const retention = state.retentionDays ?? null;
  if (retention !== null && (!Number.isInteger(retention) || retention < 0 || retention > DEFINITION_LIMITS.retentionDays)) {
    problems.push({ field: 'retention_days', message: `must be empty (the global policy) or an integer from 0 (keep forever) to ${DEFINITION_LIMITS.retentionDays}` });
  }
  if (state.tags.length > DEFINITION_LIMITS.tags) problems.push({ field: 'tags', message: `has ${state.tags.length} tags; at most ${DEFINITION_LIMITS.tags} are allowed` });
  for (const tag of state.tags) {
    if (tag === '') problems.push({ field: 'tags', message: "a tag can't be blank" });
    else if (tag.length > DEFINITION_LIMITS.tagLength) problems.push({ field: 'tags', message: `a tag is longer than ${DEFINITION_LIMITS.tagLength} characters` });
  }
  const launch = cronProblems('cron', state.crons);
  const suspend = cronProblems('suspend_cron', state.suspendCrons);
  problems.push(...launch.problems, ...suspend.problems);
  if (launch.problems.length === 0 && suspend.problems.length === 0) {
    for (const message of validateSuspendSchedules(launch.parsed, suspend.parsed)) problems.push({ field: 'suspend_cron', message });
  }
  return problems;
}

/** One line naming every problem, for the error's message. */
export function describeProblems(problems: readonly FieldProblem[]): string {
  return problems
    .map((p) => (p.line !== undefined ? `${p.field}: line ${p.line}, column ${p.column ?? 0}: ${p.message}` : `${p.field}: ${p.message}`))
    .join('; ');
}
