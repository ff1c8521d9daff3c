/**
 * What one Kuroko2 definition becomes here (the per-definition rules of kuroko2-importer.ts): its crons checked and
 * normalised, its script validated, its admins and stars matched by email, and every reason it needs a person's
 * attention, or is suspended or refused.
 */
import type { ValidationContext } from '../../core/dsl/script-validator';
import { validateScript } from '../../core/dsl/script-validator';
import { DEFINITION_DEFAULTS, validateDefinitionState } from '../../core/definitions/definition-rules';
import { PREVENT_MULTI } from '../../core/model';
import type { PreventMulti } from '../../core/model';
import { parseCron, SUSPEND_PROBLEM, validateSuspendSchedules } from '../../core/schedule';
import type { CronExpression } from '../../core/schedule';
import { normalizeEmail } from '../../core/sign-in-rules';
import type { Kuroko2Definition, Kuroko2User } from '../../db/kuroko2/kuroko2-source';
import type { ImportedDefinition } from '../../db/repositories/kuroko2-import-repository';

/** Who a revision is attributed to when Kuroko2 does not say. */
export const IMPORT_AUTHOR = 'kuroko2-import';

export type AttentionKind =
  | 'invalid_script'
  | 'invalid_cron'
  | 'suspend_crons_dropped'
  | 'suspended_by_import'
  | 'refused'
  | 'admin_without_email'
  | 'no_admin'
  | 'queue_not_served';

export interface AttentionReason {
  kind: AttentionKind;
  message: string;
  line?: number;
  column?: number;
  cron?: string;
}

/** The import options a plan depends on. */
export interface PlanOptions {
  /** IANA zone of every imported definition. */
  timeZone: string;
  /** Import every definition suspended. */
  suspendAll: boolean;
  now: Date;
}

export interface DefinitionPlan {
  definition: ImportedDefinition;
  reasons: AttentionReason[];
  refused: boolean;
}

function checkCrons(crons: readonly string[], field: string, reasons: AttentionReason[]): { kept: string[]; parsed: CronExpression[] } {
  const kept: string[] = [];
  const parsed: CronExpression[] = [];
  for (const raw of crons) {
    const cron = raw.trim().split(/\s+/).join(' ');
    if (kept.includes(cron)) continue;
    const result = parseCron(cron);
    if (result.ok) {
      kept.push(cron);
      parsed.push(result.cron);
    } else {
      reasons.push({ kind: 'invalid_cron', cron: raw, message: `${field} left out: ${result.message}` });
    }
  }
  return { kept, parsed };
}

function emailsOf(userIds: readonly number[], users: ReadonlyMap<number, Kuroko2User>): { emails: string[]; missing: number[] } {
  const emails = new Set<string>();
  const missing: number[] = [];
  for (const id of userIds) {
    const email = users.get(id)?.email ?? '';
    if (email === '') missing.push(id);
    else emails.add(normalizeEmail(email));
  }
  return { emails: [...emails].sort(), missing };
}

/** What one Kuroko2 definition becomes here, and why it needs attention. */
export function planDefinition(
  def: Kuroko2Definition,
  users: ReadonlyMap<number, Kuroko2User>,
  context: ValidationContext,
  options: PlanOptions,
  targetQueues?: ReadonlySet<string>,
): DefinitionPlan {
  const reasons: AttentionReason[] = [];
  let suspendReason: string | undefined;

  const launch = checkCrons(def.crons, 'cron', reasons);
  const suspend = checkCrons(def.suspendCrons, 'suspend cron', reasons);
  if (launch.kept.length < new Set(def.crons.map((c) => c.trim().split(/\s+/).join(' '))).size) suspendReason = 'a launch cron could not be imported';
  let suspendCrons = suspend.kept;
  const suspendProblems = validateSuspendSchedules(launch.parsed, suspend.parsed);
  if (suspendProblems.length > 0) {
    suspendCrons = [];
    const everyLaunch = suspendProblems.includes(SUSPEND_PROBLEM.suspendsEveryLaunch);
    reasons.push({
      kind: 'suspend_crons_dropped',
      message: `suspend crons left out (${suspend.kept.join(' | ')}): ${suspendProblems.join('; ')}${everyLaunch ? '; the definition is suspended instead' : ''}`,
    });
    if (everyLaunch) suspendReason ??= 'its suspend crons covered every launch';
  }

  const scriptProblems = validateScript(def.script, context);
  for (const p of scriptProblems) reasons.push({ kind: 'invalid_script', line: p.line, column: p.column, message: p.message });
  if (scriptProblems.length > 0) suspendReason = 'its script does not validate';
  else if (targetQueues) {
    for (const p of validateScript(def.script, { ...context, knownQueues: targetQueues })) {
      reasons.push({ kind: 'queue_not_served', line: p.line, column: p.column, message: `${p.message} here (Kuroko2's workers served it): start a worker for it or declare it` });
    }
  }

  const admins = emailsOf(def.adminUserIds, users);
  const stars = emailsOf(def.starUserIds, users);
  for (const id of admins.missing) {
    reasons.push({ kind: 'admin_without_email', message: `Kuroko2 user #${id} (${users.get(id)?.name || 'unknown'}) administers it but has no email: not imported as an admin` });
  }
  if (admins.emails.length === 0) reasons.push({ kind: 'no_admin', message: 'no admin with an email: only global admins can change it' });

  const preventMulti = (Object.values(PREVENT_MULTI) as number[]).includes(def.preventMulti) ? (def.preventMulti as PreventMulti) : PREVENT_MULTI.workingOrError;
  const createdAt = def.createdAt ?? def.updatedAt ?? options.now;
  const updatedAt = def.updatedAt ?? createdAt;
  const state = {
    name: def.name.trim(),
    description: def.description,
    script: def.script,
    timeZone: options.timeZone,
    suspended: def.suspended,
    preventMulti: def.preventMulti,
    notifyCancellation: def.notifyCancellation,
    notifyAll: def.hipchatNotifyFinished,
    apiAllowed: def.apiAllowed,
    slackChannel: def.slackChannel,
    webhookUrl: def.webhookUrl === '' ? null : def.webhookUrl,
    catchUpWindowMinutes: DEFINITION_DEFAULTS.catchUpWindowMinutes,
    tags: [...new Set(def.tags.map((t) => t.trim()))].sort(),
    crons: launch.kept,
    suspendCrons,
  };
  // The script and the schedules were handled above; anything else our limits refuse refuses the definition.
  const refusals = validateDefinitionState(state, context, false).filter((p) => p.field !== 'cron' && p.field !== 'suspend_cron');
  for (const p of refusals) reasons.push({ kind: 'refused', message: `${p.field}: ${p.message}` });

  if (suspendReason !== undefined && !def.suspended) reasons.push({ kind: 'suspended_by_import', message: `suspended because ${suspendReason}` });
  const suspended = def.suspended || suspendReason !== undefined || options.suspendAll;

  const revisions = def.revisions.map((r) => ({
    script: r.script,
    changedBy: (r.userId !== null && normalizeEmail(users.get(r.userId)?.email ?? '')) || (r.userId !== null ? `kuroko2 user #${r.userId}` : IMPORT_AUTHOR),
    changedAt: r.changedAt,
  }));
  if (revisions.length === 0 || revisions.at(-1)?.script !== def.script) revisions.push({ script: def.script, changedBy: IMPORT_AUTHOR, changedAt: updatedAt });

  return {
    refused: refusals.length > 0,
    reasons,
    definition: {
      id: def.id,
      name: state.name,
      description: state.description,
      script: state.script,
      timeZone: state.timeZone,
      suspended,
      preventMulti,
      notifyCancellation: state.notifyCancellation,
      notifyAll: state.notifyAll,
      apiAllowed: state.apiAllowed,
      slackChannel: state.slackChannel,
      webhookUrl: state.webhookUrl,
      hipchatRoom: def.hipchatRoom,
      hipchatAdditionalText: def.hipchatAdditionalText,
      createdAt,
      updatedAt,
      tags: state.tags,
      crons: state.crons,
      suspendCrons: state.suspendCrons,
      admins: admins.emails,
      stars: stars.emails,
      memoryExpectancyKb: def.memoryExpectancyKb,
      revisions,
    },
  };
}
