/**
 * The console's form bodies: reading fields, the definition form to and from the API's input (parsed with the
 * API's own schema, so the rules exist once), a repository's field problems back onto the form, and the launch
 * form's environment lines.
 */
import type { FieldProblem, ScriptProblem } from '../../core/errors';
import { PREVENT_MULTI } from '../../core/model';
import { normalizeEmail } from '../../core/sign-in-rules';
import { DEFINITION_DEFAULTS, type DefinitionRecord } from '../../core/definitions/definition-rules';
import { definitionInput, splitTextTags } from '../api/http-resources';
import type { buildSchemas } from '../api/http-schemas';
import type { DefinitionFormValues, FieldErrors } from './definition-form-page';

export type FormBody = Record<string, string | File | (string | File)[]>;

/** The first value of a form field as text; '' when absent or a file. */
export function field(body: FormBody, name: string): string {
  const value = body[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : '';
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** KEY=value lines as an object; a line without `=` is reported, not dropped. */
export function parseEnvLines(text: string): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) problems.push(`environment line ${index + 1}: expected KEY=value`);
    else env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { env, problems };
}

/** The form's values for a definition (or the defaults for a new one). */
export function formValuesOf(d: DefinitionRecord | undefined, adminEmails: readonly string[]): DefinitionFormValues {
  return {
    name: d?.name ?? '',
    description: d?.description ?? '',
    script: d?.script ?? '',
    tags: d?.tags.join(', ') ?? '',
    crons: d?.crons.join('\n') ?? '',
    suspendCrons: d?.suspendCrons.join('\n') ?? '',
    timeZone: d?.timeZone ?? DEFINITION_DEFAULTS.timeZone,
    preventMulti: d?.preventMulti ?? DEFINITION_DEFAULTS.preventMulti,
    suspended: d?.suspended ?? DEFINITION_DEFAULTS.suspended,
    apiAllowed: d?.apiAllowed ?? DEFINITION_DEFAULTS.apiAllowed,
    notifyCancellation: d?.notifyCancellation ?? DEFINITION_DEFAULTS.notifyCancellation,
    notifyAll: d?.notifyAll ?? DEFINITION_DEFAULTS.notifyAll,
    slackChannel: d?.slackChannel ?? DEFINITION_DEFAULTS.slackChannel,
    webhookUrl: d?.webhookUrl ?? '',
    catchUpWindowMinutes: String(d?.catchUpWindowMinutes ?? DEFINITION_DEFAULTS.catchUpWindowMinutes),
    retentionDays: d?.retentionDays === null || d?.retentionDays === undefined ? '' : String(d.retentionDays),
    admins: adminEmails.join('\n'),
  };
}

/** The form's values as typed, and the API's input parsed with the API's own schema (one copy of the rules). */
export function readDefinitionForm(body: FormBody, schemas: ReturnType<typeof buildSchemas>) {
  const values: DefinitionFormValues = {
    name: field(body, 'name'),
    description: field(body, 'description'),
    script: field(body, 'script'),
    tags: field(body, 'tags'),
    crons: field(body, 'crons'),
    suspendCrons: field(body, 'suspend_crons'),
    timeZone: field(body, 'time_zone').trim() || DEFINITION_DEFAULTS.timeZone,
    preventMulti: Number(field(body, 'prevent_multi') || PREVENT_MULTI.workingOrError),
    suspended: field(body, 'suspended') === 'true',
    apiAllowed: field(body, 'api_allowed') === 'true',
    notifyCancellation: field(body, 'notify_cancellation') === 'true',
    notifyAll: field(body, 'notify_all') === 'true',
    slackChannel: field(body, 'slack_channel').trim(),
    webhookUrl: field(body, 'webhook_url').trim(),
    catchUpWindowMinutes: field(body, 'catch_up_window_minutes').trim() || String(DEFINITION_DEFAULTS.catchUpWindowMinutes),
    retentionDays: field(body, 'retention_days').trim(),
    admins: field(body, 'admins'),
  };
  const version = Number(field(body, 'version'));
  if (field(body, 'version') !== '' && Number.isSafeInteger(version)) values.version = version;
  const errors: FieldErrors = {};
  const add = (name: string, message: string) => (errors[name] = [...(errors[name] ?? []), message]);
  const parsed = schemas.definitionCreate.safeParse({
    name: values.name,
    description: values.description,
    script: values.script,
    tags: splitTextTags(values.tags),
    cron: lines(values.crons),
    suspend_cron: lines(values.suspendCrons),
    time_zone: values.timeZone,
    prevent_multi: values.preventMulti,
    suspended: values.suspended,
    api_allowed: values.apiAllowed,
    notify_cancellation: values.notifyCancellation,
    notify_all: values.notifyAll,
    slack_channel: values.slackChannel,
    webhook_url: values.webhookUrl === '' ? null : values.webhookUrl,
    catch_up_window_minutes: values.catchUpWindowMinutes,
    retention_days: values.retentionDays ? values.retentionDays : null,
  });
  if (!parsed.success) for (const issue of parsed.error.issues) add(String(issue.path[0] ?? '_'), issue.message);
  const adminEmails = lines(values.admins.replace(/,/g, '\n')).map(normalizeEmail);
  for (const email of adminEmails) if (!/^[^@\s]+@[^@\s]+$/.test(email)) add('admins', `\`${email}\` is not an email address`);
  return { values, errors, input: parsed.success ? definitionInput(parsed.data) : undefined, adminEmails };
}

/** Field errors from a repository ValidationError; the script's located problems go to the editor. */
export function problemsToErrors(problems: readonly FieldProblem[]): { errors: FieldErrors; scriptProblems: ScriptProblem[] } {
  const errors: FieldErrors = {};
  const scriptProblems: ScriptProblem[] = [];
  for (const p of problems) {
    if (p.field === 'script' && p.line !== undefined) scriptProblems.push({ line: p.line, column: p.column ?? 1, message: p.message });
    else errors[p.field] = [...(errors[p.field] ?? []), p.message];
  }
  return { errors, scriptProblems };
}
