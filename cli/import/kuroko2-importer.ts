/**
 * `kuroko import kuroko2`: reads a Kuroko2 database and writes its definitions (with their ids), schedules, tags,
 * admins, stars, memory expectancies, script revisions and, optionally, recent history into ours, and reports
 * what needs a person's attention. The SQL on both sides lives in db/ (Kuroko2Source, Kuroko2ImportRepository);
 * this module decides what to write, and kuroko2-definition-plan.ts what each definition becomes.
 *
 * Rules:
 * - every script is validated with our validator (with the deployment's custom tasks and the queues of Kuroko2's
 *   workers and ours); a definition whose script does not validate is still imported, unchanged, but suspended,
 *   so nothing broken runs on a schedule; a launch through the API of a suspended definition still works, as in
 *   Kuroko2, and would fail at its first invalid node;
 * - a cron we cannot parse is left out (the report keeps its text) and its definition suspended; suspend crons
 *   without any launch cron are left out (they suspend nothing); suspend crons covering every launch are left out
 *   and the definition suspended (the same effect: it never launches on a schedule);
 * - any other problem (a value our limits refuse) refuses that definition alone, with the reason;
 * - a definition id already used by a definition that no earlier import wrote is a collision: the whole import is
 *   refused unless `merge`, which overwrites those definitions;
 * - admins and stars are kept by email; a Kuroko2 user without an email cannot be matched and is reported;
 * - a `queue:` Kuroko2's workers served validates, but is reported when no live worker here serves it and the
 *   deployment does not declare it (its commands would wait for a worker).
 * Kuroko2 users that were suspended get no console user, but their admin rows and stars are kept by email.
 */
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import { NO_CUSTOM_TASKS } from '../../core/dsl/custom-tasks';
import type { ValidationContext } from '../../core/dsl/script-validator';
import type { Kuroko2Instance, Kuroko2Source } from '../../db/kuroko2/kuroko2-source';
import type { ImportedInstance } from '../../db/repositories/kuroko2-history-import';
import type { ImportedDefinition, Kuroko2ImportRepository } from '../../db/repositories/kuroko2-import-repository';
import { planDefinition, type AttentionReason } from './kuroko2-definition-plan';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface Kuroko2ImportOptions {
  dryRun: boolean;
  merge: boolean;
  /** Finished instances created within this many days are imported (0: none). */
  historyDays: number;
  /** IANA zone of every imported definition. */
  timeZone: string;
  customTasks: CustomTasks;
  /** Import every definition suspended (the migration guide's first step). */
  suspendAll: boolean;
  now: Date;
  /** Progress lines (one per definition written). */
  progress?: (line: string) => void;
}

export interface DefinitionAttention {
  id: number;
  name: string;
  reasons: AttentionReason[];
}

export interface ImportReport {
  dryRun: boolean;
  /** True when nothing was written because of collisions without --merge. */
  refused: boolean;
  timeZone: string;
  counts: {
    definitions: { read: number; created: number; updated: number; unchanged: number; refused: number; suspendedByImport: number; invalidScripts: number };
    schedules: number;
    suspendSchedules: number;
    tags: number;
    admins: number;
    stars: number;
    memoryExpectancies: number;
    scriptRevisions: { read: number; added: number };
    users: { read: number; created: number; withoutEmail: number };
    history: { instances: number; alreadyImported: number; logs: number; executions: number; memorySamples: number };
  };
  attention: DefinitionAttention[];
  collisions: { id: number; kuroko2Name: string; existingName: string }[];
  usersWithoutEmail: { id: number; uid: string; name: string; adminOf: number[]; starred: number[] }[];
}

/** Whether the target already holds exactly what the plan would write (revisions: the target has them all). */
function sameDefinition(planned: ImportedDefinition, existing: ImportedDefinition): boolean {
  const strip = (d: ImportedDefinition) => {
    const fields: Record<string, unknown> = { ...d, revisions: undefined, createdAt: d.createdAt.getTime(), updatedAt: d.updatedAt.getTime() };
    return JSON.stringify(fields, Object.keys(fields).sort());
  };
  if (strip(planned) !== strip(existing)) return false;
  const have = new Set(existing.revisions.map((r) => `${r.changedAt.getTime()}\u0000${r.script}`));
  return planned.revisions.every((r) => have.has(`${r.changedAt.getTime()}\u0000${r.script}`));
}

function newRevisionCount(planned: ImportedDefinition, existing: ImportedDefinition | undefined): number {
  const have = new Set((existing?.revisions ?? []).map((r) => `${r.changedAt.getTime()}\u0000${r.script}`));
  return planned.revisions.filter((r) => !have.has(`${r.changedAt.getTime()}\u0000${r.script}`)).length;
}

function toImportedInstance(instance: Kuroko2Instance, definitionName: string): ImportedInstance {
  return {
    sourceId: instance.id,
    definitionId: instance.definitionId,
    script: instance.script,
    launchedBy: `Kuroko2 instance #${instance.id} of '${definitionName}' (imported)`,
    retrying: instance.retrying,
    createdAt: instance.createdAt,
    finishedAt: instance.finishedAt,
    canceledAt: instance.canceledAt,
    errorAt: instance.errorAt,
    logs: instance.logs,
    executions: instance.executions.map((e) => ({ ...e, termSignal: e.termSignal === null ? null : String(e.termSignal) })),
    memory: instance.maxMemoryKb !== null ? { rssKb: instance.maxMemoryKb, sampledAt: instance.memorySampledAt ?? instance.finishedAt ?? instance.createdAt } : null,
  };
}

/** Runs the import (or, with dryRun, only plans it) and returns the report. */
export async function importKuroko2(
  source: Kuroko2Source,
  target: Kuroko2ImportRepository,
  targetContext: ValidationContext,
  options: Kuroko2ImportOptions,
): Promise<ImportReport> {
  const snapshot = await source.readSnapshot();
  const ids = snapshot.definitions.map((d) => d.id);
  const existing = await target.targetDefinitions(ids);
  const report: ImportReport = {
    dryRun: options.dryRun,
    refused: false,
    timeZone: options.timeZone,
    counts: {
      definitions: { read: snapshot.definitions.length, created: 0, updated: 0, unchanged: 0, refused: 0, suspendedByImport: 0, invalidScripts: 0 },
      schedules: 0,
      suspendSchedules: 0,
      tags: 0,
      admins: 0,
      stars: 0,
      memoryExpectancies: 0,
      scriptRevisions: { read: 0, added: 0 },
      users: { read: snapshot.users.size, created: 0, withoutEmail: 0 },
      history: { instances: 0, alreadyImported: 0, logs: 0, executions: 0, memorySamples: 0 },
    },
    attention: [],
    collisions: [],
    usersWithoutEmail: [],
  };

  for (const def of snapshot.definitions) {
    const there = existing.get(def.id);
    if (there && !there.imported) report.collisions.push({ id: def.id, kuroko2Name: def.name, existingName: there.name });
  }
  report.refused = report.collisions.length > 0 && !options.merge;
  const write = !options.dryRun && !report.refused;

  const knownQueues = new Set([...(targetContext.knownQueues ?? []), ...snapshot.workerQueues]);
  const knownIds = new Set(ids);
  const context: ValidationContext = {
    knownQueues,
    definitionExists: (id) => knownIds.has(id) || (targetContext.definitionExists?.(id) ?? false),
    customTasks: options.customTasks,
  };

  for (const user of snapshot.users.values()) {
    if (user.email !== '') continue;
    const adminOf = snapshot.definitions.filter((d) => d.adminUserIds.includes(user.id)).map((d) => d.id);
    const starred = snapshot.definitions.filter((d) => d.starUserIds.includes(user.id)).map((d) => d.id);
    report.usersWithoutEmail.push({ id: user.id, uid: user.uid, name: user.name, adminOf, starred });
  }
  report.counts.users.withoutEmail = report.usersWithoutEmail.length;

  const users = [...snapshot.users.values()].filter((u) => u.email !== '' && u.suspendedAt === null);
  const usersToCreate = users.map((u) => ({ email: u.email, name: u.name || u.email, createdAt: u.createdAt ?? options.now }));
  if (write) report.counts.users.created = await target.createUsers(usersToCreate);
  else report.counts.users.created = (await target.emailsWithoutUser(usersToCreate.map((u) => u.email))).length;

  const imported: { id: number; name: string }[] = [];
  for (const def of snapshot.definitions) {
    const plan = planDefinition(def, snapshot.users, context, options, targetContext.knownQueues);
    const d = plan.definition;
    const c = report.counts;
    if (plan.reasons.length > 0) report.attention.push({ id: def.id, name: def.name, reasons: plan.reasons });
    if (plan.reasons.some((r) => r.kind === 'invalid_script')) c.definitions.invalidScripts++;
    if (plan.refused) {
      c.definitions.refused++;
      continue;
    }
    if (plan.reasons.some((r) => r.kind === 'suspended_by_import')) c.definitions.suspendedByImport++;
    c.schedules += d.crons.length;
    c.suspendSchedules += d.suspendCrons.length;
    c.tags += d.tags.length;
    c.admins += d.admins.length;
    c.stars += d.stars.length;
    if (d.memoryExpectancyKb !== null) c.memoryExpectancies++;
    c.scriptRevisions.read += def.revisions.length;
    imported.push({ id: d.id, name: d.name });

    const current = existing.has(def.id) ? await target.readDefinition(def.id) : undefined;
    c.scriptRevisions.added += newRevisionCount(d, current);
    if (current && sameDefinition(d, current)) {
      c.definitions.unchanged++;
      continue;
    }
    if (current) c.definitions.updated++;
    else c.definitions.created++;
    if (write) {
      await target.writeDefinition(d, current);
      options.progress?.(`${current ? 'updated' : 'created'} definition ${d.id} ${d.name}\n`);
    }
  }

  if (options.historyDays > 0) {
    const since = new Date(options.now.getTime() - options.historyDays * DAY_MS);
    const h = report.counts.history;
    for (const def of imported) {
      const sourceIds = await source.finishedInstanceIds(def.id, since);
      const done = await target.importedInstanceIds(sourceIds);
      h.alreadyImported += done.size;
      const fresh = sourceIds.filter((id) => !done.has(id));
      if (fresh.length === 0) continue;
      for (const instance of await source.readInstances(fresh)) {
        h.instances++;
        h.logs += instance.logs.length;
        h.executions += instance.executions.length;
        if (instance.maxMemoryKb !== null) h.memorySamples++;
        if (write) await target.writeInstance(toImportedInstance(instance, def.name));
      }
    }
  }

  if (write && imported.length > 0) await target.reserveIdsThrough(Math.max(...imported.map((d) => d.id)));
  return report;
}

export { NO_CUSTOM_TASKS };

/** The report as text for the terminal. */
export function formatReport(report: ImportReport): string {
  const c = report.counts;
  const lines: string[] = [];
  const verb = report.dryRun || report.refused ? 'would be' : 'were';
  lines.push(report.dryRun ? 'Dry run: nothing was written.' : report.refused ? 'Refused: nothing was written.' : 'Import finished.');
  lines.push(
    `Definitions: ${c.definitions.read} read; ${c.definitions.created} ${verb} created, ${c.definitions.updated} updated, ${c.definitions.unchanged} unchanged, ${c.definitions.refused} refused; ` +
      `${c.definitions.invalidScripts} with an invalid script, ${c.definitions.suspendedByImport} suspended by the import.`,
  );
  lines.push(
    `Schedules: ${c.schedules} cron, ${c.suspendSchedules} suspend. Tags: ${c.tags}. Admins: ${c.admins}. Stars: ${c.stars}. ` +
      `Memory expectancies: ${c.memoryExpectancies}. Script revisions: ${c.scriptRevisions.read} read, ${c.scriptRevisions.added} ${verb} added.`,
  );
  lines.push(`Users: ${c.users.read} read, ${c.users.created} ${verb} created, ${c.users.withoutEmail} without an email.`);
  lines.push(
    `History: ${c.history.instances} instances (${c.history.alreadyImported} imported before), ${c.history.logs} log lines, ${c.history.executions} executions, ${c.history.memorySamples} memory peaks.`,
  );
  if (report.collisions.length > 0) {
    lines.push('', `Ids already used by definitions that were not imported${report.refused ? ' (rerun with --merge to overwrite them)' : ' (overwritten: --merge)'}:`);
    for (const x of report.collisions) lines.push(`  #${x.id}: Kuroko2 '${x.kuroko2Name}', here '${x.existingName}'`);
  }
  if (report.attention.length > 0) {
    lines.push('', 'Needs attention:');
    for (const a of report.attention) {
      lines.push(`  #${a.id} ${a.name}`);
      for (const r of a.reasons) {
        const where = r.line !== undefined ? `line ${r.line}, column ${r.column ?? 0}: ` : '';
        lines.push(`    ${r.kind}: ${where}${r.message}`);
      }
    }
  }
  if (report.usersWithoutEmail.length > 0) {
    lines.push('', 'Kuroko2 users without an email (their admin rights and stars were not imported):');
    for (const u of report.usersWithoutEmail) {
      lines.push(`  #${u.id} ${u.name || '(no name)'} uid ${u.uid}: admin of [${u.adminOf.join(', ')}], starred [${u.starred.join(', ')}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}
