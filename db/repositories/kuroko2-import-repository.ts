/**
 * The writes of `kuroko import kuroko2` into our database (any dialect): one transaction per definition and one
 * per imported instance, small enough for the Data API. Definitions keep their Kuroko2 ids; `kuroko2_imports`
 * (migration 0007) records what came from Kuroko2, so a second run updates those rows, creates nothing twice, and
 * tells an imported definition from a colliding one. An instance's rows are in kuroko2-history-import.ts.
 */
import type { Kysely, Transaction } from 'kysely';
import { normalizeEmail } from '../../core/sign-in-rules';
import type { Definition } from '../../core/model';
import type { Clock, IdGenerator } from '../../core/ports';
import { fromDbInt, fromDbTime } from '../column-codec';
import { GLOBAL_ID_SEQUENCE } from '../migrations/0001-initial-schema';
import type { Database } from '../schema';
import { definitionRecords } from './definition-records';
import { idsPerImportedInstance, insertImportedInstance, type ImportedInstance } from './kuroko2-history-import';
import { IMPORT_KIND, type ImportDb, type Kuroko2ImportTables } from './kuroko2-import-tables';
import { withTransaction } from './transaction';

// Kept for the readers that import the tables' type from here.
export type { Kuroko2ImportTables } from './kuroko2-import-tables';

export interface ImportedRevision {
  script: string;
  changedBy: string;
  changedAt: Date;
}

/** A definition as it is (or will be) in our database, with everything the import writes. */
export interface ImportedDefinition
  extends Pick<
    Definition,
    | 'id'
    | 'name'
    | 'description'
    | 'script'
    | 'timeZone'
    | 'suspended'
    | 'preventMulti'
    | 'notifyCancellation'
    | 'notifyAll'
    | 'apiAllowed'
    | 'slackChannel'
    | 'webhookUrl'
    | 'createdAt'
    | 'updatedAt'
  > {
  hipchatRoom: string;
  hipchatAdditionalText: string | null;
  tags: string[];
  crons: string[];
  suspendCrons: string[];
  /** Lower-cased emails, sorted. */
  admins: string[];
  stars: string[];
  memoryExpectancyKb: number | null;
  /** Oldest first. */
  revisions: ImportedRevision[];
}

export interface TargetDefinition {
  name: string;
  /** It was written by an earlier import. */
  imported: boolean;
}

const revisionKey = (r: ImportedRevision) => `${r.changedAt.getTime()}\u0000${r.script}`;

/** Reads what the import compares with and writes what it brings. */
export class Kuroko2ImportRepository {
  private readonly db: ImportDb;

  constructor(
    private readonly root: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
  ) {
    this.db = root.withTables<Kuroko2ImportTables>();
  }

  /** The target's definitions among these ids, and whether each came from an earlier import. */
  async targetDefinitions(ids: readonly number[]): Promise<Map<number, TargetDefinition>> {
    const out = new Map<number, TargetDefinition>();
    if (ids.length === 0) return out;
    const [rows, marks] = await Promise.all([
      this.db.selectFrom('job_definitions').select(['id', 'name']).where('id', 'in', [...ids]).execute(),
      this.db.selectFrom('kuroko2_imports').select('source_id').where('kind', '=', IMPORT_KIND.definition).where('source_id', 'in', [...ids]).execute(),
    ]);
    const imported = new Set(marks.map((m) => fromDbInt(m.source_id)));
    for (const row of rows) out.set(fromDbInt(row.id), { name: row.name, imported: imported.has(fromDbInt(row.id)) });
    return out;
  }

  /** A definition as the import would see it if it had written it; undefined when there is none. */
  async readDefinition(id: number): Promise<ImportedDefinition | undefined> {
    const row = await this.db.selectFrom('job_definitions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const [[record], admins, stars, expectancy, revisions] = await Promise.all([
      definitionRecords(this.root, [row]),
      this.db.selectFrom('definition_admins').select('email').where('job_definition_id', '=', id).orderBy('email').execute(),
      this.db.selectFrom('definition_stars').select('email').where('job_definition_id', '=', id).orderBy('email').execute(),
      this.db.selectFrom('memory_expectancies').select('expected_kb').where('job_definition_id', '=', id).executeTakeFirst(),
      this.db.selectFrom('script_revisions').select(['script', 'changed_by', 'changed_at']).where('job_definition_id', '=', id).orderBy('changed_at').orderBy('id').execute(),
    ]);
    if (!record) return undefined;
    return {
      id,
      name: record.name,
      description: record.description,
      script: record.script,
      timeZone: record.timeZone,
      suspended: record.suspended,
      preventMulti: record.preventMulti,
      notifyCancellation: record.notifyCancellation,
      notifyAll: record.notifyAll,
      apiAllowed: record.apiAllowed,
      slackChannel: record.slackChannel,
      webhookUrl: record.webhookUrl,
      hipchatRoom: row.hipchat_room,
      hipchatAdditionalText: row.hipchat_additional_text,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      tags: [...record.tags].sort(),
      crons: record.crons,
      suspendCrons: record.suspendCrons,
      admins: admins.map((a) => a.email),
      stars: stars.map((s) => s.email),
      memoryExpectancyKb: expectancy ? fromDbInt(expectancy.expected_kb) : null,
      revisions: revisions.map((r) => ({ script: r.script, changedBy: r.changed_by, changedAt: fromDbTime(r.changed_at) })),
    };
  }

  /**
   * Writes one definition and everything that belongs to it in one transaction: inserted with its id when absent,
   * otherwise overwritten (version + 1); lists replaced; revisions the target lacks added; marked as imported.
   */
  async writeDefinition(def: ImportedDefinition, existing: ImportedDefinition | undefined): Promise<void> {
    const known = new Set((existing?.revisions ?? []).map(revisionKey));
    const newRevisions = def.revisions.filter((r) => !known.has(revisionKey(r)));
    const idsNeeded = def.tags.length + def.crons.length + def.suspendCrons.length + newRevisions.length;
    const now = this.clock.now();
    await withTransaction(this.root, this.ids, idsNeeded, async (trx) => {
      const db = trx.withTables<Kuroko2ImportTables>();
      const columns = {
        name: def.name,
        description: def.description,
        script: def.script,
        time_zone: def.timeZone,
        suspended: def.suspended,
        prevent_multi: def.preventMulti,
        notify_cancellation: def.notifyCancellation,
        notify_all: def.notifyAll,
        api_allowed: def.apiAllowed,
        slack_channel: def.slackChannel,
        webhook_url: def.webhookUrl,
        hipchat_room: def.hipchatRoom,
        hipchat_additional_text: def.hipchatAdditionalText,
        created_at: def.createdAt,
        updated_at: def.updatedAt,
      };
      const current = await db.selectFrom('job_definitions').select('version').where('id', '=', def.id).executeTakeFirst();
      if (current) {
        await db.updateTable('job_definitions').set({ ...columns, version: Number(current.version) + 1 }).where('id', '=', def.id).execute();
      } else {
        await db.insertInto('job_definitions').values({ id: def.id, ...columns, catch_up_window_minutes: 60, version: 0 }).execute();
      }
      await this.replaceTags(db, def.id, def.tags, now);
      for (const table of ['job_schedules', 'job_suspend_schedules'] as const) {
        const crons = table === 'job_schedules' ? def.crons : def.suspendCrons;
        await db.deleteFrom(table).where('job_definition_id', '=', def.id).execute();
        const rows = [];
        for (const cron of crons) rows.push({ id: await this.ids.nextId(), job_definition_id: def.id, cron, created_at: now });
        if (rows.length > 0) await db.insertInto(table).values(rows).execute();
      }
      await db.deleteFrom('definition_admins').where('job_definition_id', '=', def.id).execute();
      if (def.admins.length > 0) await db.insertInto('definition_admins').values(def.admins.map((email) => ({ job_definition_id: def.id, email, created_at: now }))).execute();
      await db.deleteFrom('definition_stars').where('job_definition_id', '=', def.id).execute();
      if (def.stars.length > 0) await db.insertInto('definition_stars').values(def.stars.map((email) => ({ job_definition_id: def.id, email, created_at: now }))).execute();
      await db.deleteFrom('memory_expectancies').where('job_definition_id', '=', def.id).execute();
      if (def.memoryExpectancyKb !== null) {
        await db.insertInto('memory_expectancies').values({ job_definition_id: def.id, expected_kb: def.memoryExpectancyKb, updated_at: now }).execute();
      }
      for (const r of newRevisions) {
        await db
          .insertInto('script_revisions')
          .values({ id: await this.ids.nextId(), job_definition_id: def.id, script: r.script, changed_by: r.changedBy, changed_at: r.changedAt })
          .execute();
      }
      await db.deleteFrom('kuroko2_imports').where('kind', '=', IMPORT_KIND.definition).where('source_id', '=', def.id).execute();
      await db.insertInto('kuroko2_imports').values({ kind: IMPORT_KIND.definition, source_id: def.id, target_id: def.id, imported_at: now }).execute();
    });
  }

  private async replaceTags(db: Transaction<Database & Kuroko2ImportTables>, definitionId: number, names: readonly string[], now: Date): Promise<void> {
    await db.deleteFrom('job_definition_tags').where('job_definition_id', '=', definitionId).execute();
    if (names.length === 0) return;
    const existing = await db.selectFrom('tags').select(['id', 'name']).where('name', 'in', [...names]).execute();
    const idByName = new Map(existing.map((t) => [t.name, fromDbInt(t.id)]));
    const rows = [];
    for (const name of names) {
      if (idByName.has(name)) continue;
      const id = await this.ids.nextId();
      idByName.set(name, id);
      rows.push({ id, name, created_at: now });
    }
    if (rows.length > 0) await db.insertInto('tags').values(rows).execute();
    await db
      .insertInto('job_definition_tags')
      .values(names.map((name) => ({ job_definition_id: definitionId, tag_id: idByName.get(name) ?? 0 })))
      .execute();
  }

  /** Which of these emails have no console user yet. */
  async emailsWithoutUser(emails: readonly string[]): Promise<string[]> {
    if (emails.length === 0) return [];
    const keys = [...new Set(emails.map(normalizeEmail))];
    const rows = await this.db.selectFrom('console_users').select('email').where('email', 'in', keys).execute();
    const have = new Set(rows.map((r) => r.email));
    return keys.filter((k) => !have.has(k));
  }

  /** Creates the console users that do not exist yet (one statement per user, each on its own). */
  async createUsers(users: readonly { email: string; name: string; createdAt: Date }[]): Promise<number> {
    const missing = new Set(await this.emailsWithoutUser(users.map((u) => u.email)));
    let created = 0;
    for (const user of users) {
      const email = normalizeEmail(user.email);
      if (!missing.delete(email)) continue;
      await this.db
        .insertInto('console_users')
        .values({ id: await this.ids.nextId(), email, name: user.name, created_at: user.createdAt, last_signed_in_at: user.createdAt })
        .execute();
      created++;
    }
    return created;
  }

  /** Kuroko2 instance ids already imported. */
  async importedInstanceIds(sourceIds: readonly number[]): Promise<Set<number>> {
    if (sourceIds.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('kuroko2_imports')
      .select('source_id')
      .where('kind', '=', IMPORT_KIND.instance)
      .where('source_id', 'in', [...sourceIds])
      .execute();
    return new Set(rows.map((r) => fromDbInt(r.source_id)));
  }

  /** Writes one finished instance with its logs, executions and memory peak in one transaction. */
  async writeInstance(instance: ImportedInstance): Promise<void> {
    const now = this.clock.now();
    await withTransaction(this.root, this.ids, idsPerImportedInstance(instance), (trx) =>
      insertImportedInstance(trx.withTables<Kuroko2ImportTables>(), this.ids, instance, now),
    );
  }

  /**
   * Moves the id sequence past `maxId`, so ids handed out from now on never repeat an imported definition's id. A
   * process that reserved a block before this keeps it: start servers after the import, or restart them.
   */
  async reserveIdsThrough(maxId: number): Promise<void> {
    for (;;) {
      const row = await this.db.selectFrom('id_blocks').select('next_id').where('name', '=', GLOBAL_ID_SEQUENCE).executeTakeFirst();
      if (!row) throw new Error(`id sequence "${GLOBAL_ID_SEQUENCE}" is missing from id_blocks: run the migrations`);
      const start = fromDbInt(row.next_id);
      if (start > maxId) return;
      const result = await this.db
        .updateTable('id_blocks')
        .set({ next_id: maxId + 1 })
        .where('name', '=', GLOBAL_ID_SEQUENCE)
        .where('next_id', '=', start)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return;
    }
  }
}
