/**
 * The dashboard and the job definitions: the searchable list, a definition's page, create, edit, delete, suspend,
 * star, script revisions, and the script check the editor calls as you type.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { validateScript } from '../../core/dsl/script-validator';
import { ConflictError, NotFoundError, ValidationError, type ScriptProblem } from '../../core/errors';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import type { AlsoWrite } from '../../db/repositories/definition-repository';
import { DEFAULT_HTTP_LIMITS } from '../api/http-schemas';
import type { ConsoleUser } from './console-access';
import { ID, idParam, LIST_LIMITS, STATUS, type ConsoleEnv, type ConsoleKit, type Ctx } from './console-context';
import { field, formValuesOf, problemsToErrors, readDefinitionForm } from './console-forms';
import { definitionFormPage, type DefinitionFormValues, type FieldErrors } from './definition-form-page';
import { dashboardPage, definitionListPage, definitionPage, revisionsPage, type DefinitionRow } from './definition-pages';
import { safeReturnTo } from './return-to';
import { referencedIds } from './script-view';

/** What the launch form sent, shown again on the definition's page when it could not launch. */
export interface LaunchAttempt {
  script: string;
  env: string;
  problems: readonly ScriptProblem[];
  error?: string;
}

const TIME_ZONES = (() => {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC'];
  }
})();

/** A definition's page; with `launch`, the launch form as it was sent and why it did not launch. */
export async function showDefinition(kit: ConsoleKit, c: Ctx, user: ConsoleUser, id: number, launch?: LaunchAttempt, status: 200 | 422 = STATUS.ok) {
  const definition = await kit.definitions.get(id);
  const before = Number(c.req.query('before'));
  const olderThan = Number.isSafeInteger(before) && before > 0 ? before : undefined;
  const [adminsOf, starred, instances, stats, names] = await Promise.all([
    kit.people.adminsOf([id]),
    kit.people.starredIds(user.email),
    kit.queries.listInstances(id, { limit: LIST_LIMITS.instances, ...(olderThan ? { beforeId: olderThan } : {}) }).catch((error: unknown) => {
      if (error instanceof NotFoundError) return [];
      throw error;
    }),
    kit.reads.instanceStats(id, LIST_LIMITS.stats),
    kit.reads.definitionNames(referencedIds(definition.script)),
  ]);
  const admins = adminsOf.get(id) ?? [];
  const customTasks = kit.services.customTasks;
  return kit.render(
    c,
    definitionPage(kit.userCtx(c, user, true), {
      definition,
      admins,
      starred: starred.has(id),
      canAdminister: kit.access.administers(user, admins),
      instances,
      olderThan,
      stats,
      names,
      now: new Date(kit.now()),
      ...(launch ? { launch } : {}),
      ...(customTasks ? { customTasks } : {}),
    }),
    status,
  );
}

/** The dashboard, definition and script-check routes. */
export function definitionRoutes(kit: ConsoleKit): Hono<ConsoleEnv> {
  const { access, definitions, people, page, action, render, flashRedirect } = kit;
  const app = new Hono<ConsoleEnv>();

  /** Table rows of definitions; `starred` is the person's stars when the caller already read them. */
  const rowsFor = async (records: readonly DefinitionRecord[], email: string, starredIds?: ReadonlySet<number>): Promise<DefinitionRow[]> => {
    const ids = records.map((d) => d.id);
    const [adminsOf, latest, starred] = await Promise.all([people.adminsOf(ids), kit.reads.latestInstances(ids), starredIds ?? people.starredIds(email)]);
    return records.map((definition) => ({ definition, admins: adminsOf.get(definition.id) ?? [], latest: latest.get(definition.id), starred: starred.has(definition.id) }));
  };

  const formPage = async (
    c: Ctx,
    user: ConsoleUser,
    mode: 'new' | 'edit',
    values: DefinitionFormValues,
    errors: FieldErrors = {},
    scriptProblems: readonly ScriptProblem[] = [],
    definitionId?: number,
    status: 200 | 409 | 422 = STATUS.ok,
  ) => {
    const knownEmails = (await people.listUsers()).map((u) => u.email);
    const data = { mode, values, errors, scriptProblems, knownEmails, timeZones: TIME_ZONES, canChangeAdmins: user.globalAdmin, ...(definitionId !== undefined ? { definitionId } : {}) };
    return render(c, definitionFormPage(kit.userCtx(c, user), data), status);
  };

  app.post(
    '/console/validate',
    action(async (c) => {
      const body = z.object({ script: z.string().max(DEFAULT_HTTP_LIMITS.maxScriptLength) }).safeParse(await c.req.json().catch(() => undefined));
      if (!body.success) return c.json({ message: 'expected {"script": "..."}' }, STATUS.badRequest);
      const problems: ScriptProblem[] = body.data.script.trim() === '' ? [{ line: 1, column: 1, message: "script can't be blank" }] : validateScript(body.data.script, await kit.validationContext());
      return c.json({ problems });
    }),
  );

  app.get(
    '/',
    page(async (c, user) => {
      const records = await people.starredDefinitions(user.email);
      const starred = await rowsFor(records, user.email, new Set(records.map((d) => d.id)));
      const at = new Date(kit.now());
      const [working, failures, canceled] = await Promise.all([
        kit.reads.workingInstances(LIST_LIMITS.dashboard),
        kit.reads.failedInstances(LIST_LIMITS.dashboard),
        kit.reads.canceledSince(new Date(at.getTime() - LIST_LIMITS.canceledWindowMs), LIST_LIMITS.dashboard),
      ]);
      return render(c, dashboardPage(kit.userCtx(c, user, true), { starred, working, failures, canceled, now: at }));
    }),
  );

  app.get(
    '/definitions',
    page(async (c, user) => {
      const q = (c.req.query('q') ?? '').trim();
      const tags = (c.req.queries('tag') ?? []).map((t) => t.trim()).filter((t) => t !== '');
      const found = await kit.reads.searchDefinitions(q, tags);
      const ctx = kit.userCtx(c, user, true);
      const rows = await rowsFor(found.matches, user.email);
      const backPath = c.req.path + new URL(c.req.url).search;
      return render(c, definitionListPage(ctx, { rows, q, tags, allTags: found.allTags, total: found.total, now: new Date(kit.now()), canCreate: user.globalAdmin, backPath }));
    }),
  );

  app.get(
    '/definitions/new',
    page(async (c, user) => {
      access.requireGlobalAdmin(user, 'create job definitions');
      const from = Number(c.req.query('dup_from'));
      const source = Number.isSafeInteger(from) && from > 0 ? await definitions.find(from) : undefined;
      const values = formValuesOf(source, source ? ((await people.adminsOf([source.id])).get(source.id) ?? []) : [user.email]);
      if (source) values.name = `${source.name} (copy)`;
      return formPage(c, user, 'new', values);
    }),
  );

  app.post(
    '/definitions',
    action(async (c, user, body) => {
      access.requireGlobalAdmin(user, 'create job definitions');
      const form = readDefinitionForm(body, kit.schemas);
      if (!form.input || Object.keys(form.errors).length > 0) return formPage(c, user, 'new', form.values, form.errors, [], undefined, STATUS.unprocessable);
      try {
        const created = await definitions.create(form.input, `console (${user.email})`, (trx, id) => people.replaceAdmins(trx, id, form.adminEmails));
        await people.setStar(user.email, created.id, true);
        return flashRedirect(c, `/definitions/${created.id}`, { kind: 'notice', text: `Created ${created.name}.` });
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        const { errors, scriptProblems } = problemsToErrors(error.problems);
        return formPage(c, user, 'new', form.values, errors, scriptProblems, undefined, STATUS.unprocessable);
      }
    }),
  );

  app.get(
    `/definitions/:id${ID}`,
    page(async (c, user) => showDefinition(kit, c, user, idParam(c, 'id'))),
  );

  app.get(
    `/definitions/:id${ID}/edit`,
    page(async (c, user) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'edit this definition');
      const definition = await definitions.get(id);
      const values = formValuesOf(definition, (await people.adminsOf([id])).get(id) ?? []);
      values.version = definition.version;
      return formPage(c, user, 'edit', values, {}, [], id);
    }),
  );

  app.post(
    `/definitions/:id${ID}`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'edit this definition');
      const current = await definitions.get(id);
      const form = readDefinitionForm(body, kit.schemas);
      if (!form.input || Object.keys(form.errors).length > 0) return formPage(c, user, 'edit', form.values, form.errors, [], id, STATUS.unprocessable);
      if (form.values.version !== undefined && form.values.version !== current.version) {
        return formPage(c, user, 'edit', form.values, { _: ['Someone else saved this definition after you opened the form. Copy your changes, reload, and apply them again.'] }, [], id, STATUS.conflict);
      }
      try {
        // Only a global admin hands out admin rights; a definition admin's form shows the list read-only.
        const saveAdmins: AlsoWrite | undefined = user.globalAdmin ? (trx) => people.replaceAdmins(trx, id, form.adminEmails) : undefined;
        const updated = await definitions.update(id, form.input, `console (${user.email})`, saveAdmins);
        return flashRedirect(c, `/definitions/${id}`, { kind: 'notice', text: `Saved ${updated.name}.` });
      } catch (error) {
        if (error instanceof ConflictError) return formPage(c, user, 'edit', form.values, { _: [error.message] }, [], id, STATUS.conflict);
        if (!(error instanceof ValidationError)) throw error;
        const { errors, scriptProblems } = problemsToErrors(error.problems);
        return formPage(c, user, 'edit', form.values, errors, scriptProblems, id, STATUS.unprocessable);
      }
    }),
  );

  app.post(
    `/definitions/:id${ID}/delete`,
    action(async (c, user) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'delete this definition');
      const definition = await definitions.get(id);
      try {
        await definitions.delete(id, (trx) => people.forgetDefinition(trx, id));
      } catch (error) {
        if (error instanceof ConflictError) return flashRedirect(c, `/definitions/${id}`, { kind: 'error', text: error.message });
        throw error;
      }
      return flashRedirect(c, '/definitions', { kind: 'notice', text: `Deleted ${definition.name}.` });
    }),
  );

  app.post(
    `/definitions/:id${ID}/suspend`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'suspend or resume this definition');
      const suspended = field(body, 'suspended') === 'true';
      const updated = await definitions.update(id, { suspended }, `console (${user.email})`);
      return flashRedirect(c, `/definitions/${id}`, { kind: 'notice', text: suspended ? `Suspended the schedules of ${updated.name}.` : `Resumed the schedules of ${updated.name}.` });
    }),
  );

  app.post(
    `/definitions/:id${ID}/star`,
    action(async (c, user, body) => {
      // A star is the person's own bookmark, so viewers may star too.
      const id = idParam(c, 'id');
      await definitions.get(id);
      await people.setStar(user.email, id, field(body, 'starred') === 'true');
      return kit.redirect(c, safeReturnTo(field(body, 'back') || `/definitions/${id}`));
    }),
  );

  app.get(
    `/definitions/:id${ID}/revisions`,
    page(async (c, user) => {
      const id = idParam(c, 'id');
      const definition = await definitions.get(id);
      return render(c, revisionsPage(kit.userCtx(c, user), definition, await kit.reads.revisions(id, LIST_LIMITS.revisions)));
    }),
  );

  return app;
}
