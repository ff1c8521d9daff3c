/**
 * The web console's people, which the API does not need: who signed in, who administers which definition, and each
 * person's stars. Keyed by lower-cased email. The console's overview reads are in console-query-repository.ts;
 * writes to definitions, instances and workers go through the same repositories and services as the API.
 */
import type { Kysely, Transaction } from 'kysely';
import { normalizeEmail } from '../../core/sign-in-rules';
import type { Clock, IdGenerator } from '../../core/ports';
import { fromDbInt, fromDbTime } from '../column-codec';
import type { ConsoleUserRow, Database } from '../schema';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import { definitionRecords } from './definition-records';
import { readByWidth, rowWidths, widthOf } from './paging';

export interface ConsoleUser {
  id: number;
  email: string;
  name: string;
  createdAt: Date;
  lastSignedInAt: Date;
}

function toConsoleUser(row: ConsoleUserRow): ConsoleUser {
  return { id: fromDbInt(row.id), email: row.email, name: row.name, createdAt: fromDbTime(row.created_at), lastSignedInAt: fromDbTime(row.last_signed_in_at) };
}

/** The console's people: users, definition admins and stars. */
export class ConsoleRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
  ) {}

  /** Records a sign-in, creating the user on the first one; returns the user. */
  async recordSignIn(email: string, name: string): Promise<ConsoleUser> {
    const key = normalizeEmail(email);
    const now = this.clock.now();
    const updated = await this.db.updateTable('console_users').set({ name, last_signed_in_at: now }).where('email', '=', key).executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0 && !(await this.findUser(key))) {
      await this.ids.ensureAvailable?.(1);
      try {
        await this.db.insertInto('console_users').values({ id: await this.ids.nextId(), email: key, name, created_at: now, last_signed_in_at: now }).execute();
      } catch (error) {
        // Two first sign-ins of one person at once: the other insert won, which is the same outcome.
        if (!(await this.findUser(key))) throw error;
      }
    }
    const user = await this.findUser(key);
    if (!user) throw new Error(`console user ${key} vanished after sign-in`);
    return user;
  }

  /** The user with this email, or undefined. */
  async findUser(email: string): Promise<ConsoleUser | undefined> {
    const row = await this.db.selectFrom('console_users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
    return row ? toConsoleUser(row) : undefined;
  }

  /** Every user, by email (for the admin picker). */
  async listUsers(): Promise<ConsoleUser[]> {
    const rows = await this.db.selectFrom('console_users').selectAll().orderBy('email').execute();
    return rows.map(toConsoleUser);
  }

  /** Admin emails per definition id (every definition when `definitionIds` is absent). */
  async adminsOf(definitionIds?: readonly number[]): Promise<Map<number, string[]>> {
    let query = this.db.selectFrom('definition_admins').select(['job_definition_id', 'email']).orderBy('email');
    if (definitionIds) {
      if (definitionIds.length === 0) return new Map();
      query = query.where('job_definition_id', 'in', definitionIds);
    }
    const out = new Map<number, string[]>();
    for (const row of await query.execute()) {
      const id = fromDbInt(row.job_definition_id);
      out.set(id, [...(out.get(id) ?? []), row.email]);
    }
    return out;
  }

  /** True when the person administers the definition. */
  async isDefinitionAdmin(definitionId: number, email: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('definition_admins')
      .select('email')
      .where('job_definition_id', '=', definitionId)
      .where('email', '=', normalizeEmail(email))
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Replaces the admins of a definition inside the caller's transaction (the definition's own save). */
  async replaceAdmins(trx: Transaction<Database>, definitionId: number, emails: readonly string[]): Promise<void> {
    const unique = [...new Set(emails.map(normalizeEmail).filter((e) => e !== ''))];
    await trx.deleteFrom('definition_admins').where('job_definition_id', '=', definitionId).execute();
    if (unique.length > 0) {
      const now = this.clock.now();
      await trx.insertInto('definition_admins').values(unique.map((email) => ({ job_definition_id: definitionId, email, created_at: now }))).execute();
    }
  }

  /** Removes what the console kept about a deleted definition, inside the caller's transaction (the delete's). */
  async forgetDefinition(trx: Transaction<Database>, definitionId: number): Promise<void> {
    await trx.deleteFrom('definition_admins').where('job_definition_id', '=', definitionId).execute();
    await trx.deleteFrom('definition_stars').where('job_definition_id', '=', definitionId).execute();
  }

  /** Ids of the definitions a person starred. */
  async starredIds(email: string): Promise<Set<number>> {
    const rows = await this.db.selectFrom('definition_stars').select('job_definition_id').where('email', '=', normalizeEmail(email)).execute();
    return new Set(rows.map((r) => fromDbInt(r.job_definition_id)));
  }

  /** The definitions a person starred, by id, with their tags and schedules (the dashboard's rows): the stars are joined, not read first. */
  async starredDefinitions(email: string): Promise<DefinitionRecord[]> {
    const widths = rowWidths(
      await this.db
        .selectFrom('job_definitions as d')
        .innerJoin('definition_stars as s', 's.job_definition_id', 'd.id')
        .select(['d.id as id', widthOf('d.description', 'd.script').as('wide')])
        .where('s.email', '=', normalizeEmail(email))
        .orderBy('d.id')
        .execute(),
    );
    const rows = await readByWidth(widths, (ids) => this.db.selectFrom('job_definitions').selectAll().where('id', 'in', ids).execute());
    return definitionRecords(this.db, rows);
  }

  /** Stars or unstars a definition for a person; starring twice is harmless. */
  async setStar(email: string, definitionId: number, starred: boolean): Promise<void> {
    const key = normalizeEmail(email);
    await this.db.deleteFrom('definition_stars').where('email', '=', key).where('job_definition_id', '=', definitionId).execute();
    if (starred) await this.db.insertInto('definition_stars').values({ email: key, job_definition_id: definitionId, created_at: this.clock.now() }).execute();
  }
}
