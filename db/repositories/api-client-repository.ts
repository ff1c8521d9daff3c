/** API clients: a name, a hashed secret and a scope. Hashing lives with the HTTP auth code; this stores the result. */
import type { Kysely } from 'kysely';
import { ConflictError } from '../../core/errors';
import { fromDbInt, fromDbTime } from '../column-codec';
import { isDuplicateKeyError } from '../db-errors';
import type { Database } from '../schema';
import type { IdGenerator, Clock } from '../../core/ports';

/** What a client may do: read (GET only), launch (read plus launching and operating instances), admin (everything). */
export const API_SCOPE = { read: 'read', launch: 'launch', admin: 'admin' } as const;
export type ApiScope = (typeof API_SCOPE)[keyof typeof API_SCOPE];

const SCOPE_RANK: Record<ApiScope, number> = { read: 0, launch: 1, admin: 2 };

/** True for a known scope name. */
export function isApiScope(value: string): value is ApiScope {
  return Object.hasOwn(SCOPE_RANK, value);
}

/** True when a client of scope `have` may do what needs scope `need`. */
export function scopeAllows(have: ApiScope, need: ApiScope): boolean {
  return SCOPE_RANK[have] >= SCOPE_RANK[need];
}

/** Names go into `launched_by` and the Basic credentials, so they stay short and free of `:` and `,`. */
export const API_CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$/;

export interface ApiClientRecord {
  id: number;
  name: string;
  /** `scrypt$N$r$p$salt$hash`. */
  secretHash: string;
  scope: ApiScope;
  createdAt: Date;
}

/** Stores API clients. */
export class ApiClientRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
  ) {}

  /** The client with this name, or undefined. A row with an unknown scope reads as `read`, the least privilege. */
  async findByName(name: string): Promise<ApiClientRecord | undefined> {
    const row = await this.db.selectFrom('api_clients').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    return {
      id: fromDbInt(row.id),
      name: row.name,
      secretHash: row.secret_hash,
      scope: isApiScope(row.scope) ? row.scope : API_SCOPE.read,
      createdAt: fromDbTime(row.created_at),
    };
  }

  /** Every client's name and scope, by name. */
  async list(): Promise<{ name: string; scope: string }[]> {
    return this.db.selectFrom('api_clients').select(['name', 'scope']).orderBy('name').execute();
  }

  /** Every client's name, scope and creation time, by name (never the hash). */
  async listSummaries(): Promise<{ name: string; scope: string; createdAt: Date }[]> {
    const rows = await this.db.selectFrom('api_clients').select(['name', 'scope', 'created_at']).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, scope: r.scope, createdAt: fromDbTime(r.created_at) }));
  }

  /** Deletes a client, ending its access at once; false when there was none. */
  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('api_clients').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Replaces a client's secret hash (the old secret stops working at once); false when there is no such client. */
  async replaceSecret(name: string, secretHash: string): Promise<boolean> {
    const result = await this.db.updateTable('api_clients').set({ secret_hash: secretHash }).where('name', '=', name).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Creates a client; ConflictError when the name is taken. */
  async create(name: string, secretHash: string, scope: ApiScope): Promise<void> {
    try {
      await this.db
        .insertInto('api_clients')
        .values({ id: await this.ids.nextId(), name, secret_hash: secretHash, scope, created_at: this.clock.now() })
        .execute();
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new ConflictError(`an API client named ${name} already exists`);
      throw error;
    }
  }

  /** Creates the client or replaces its secret and scope. */
  async upsert(name: string, secretHash: string, scope: ApiScope): Promise<void> {
    const update = () =>
      this.db.updateTable('api_clients').set({ secret_hash: secretHash, scope }).where('name', '=', name).executeTakeFirst();
    if (Number((await update()).numUpdatedRows) > 0) return;
    try {
      await this.create(name, secretHash, scope);
    } catch (error) {
      // Another process created it between the update and the insert (two servers starting at once).
      if (!(error instanceof ConflictError)) throw error;
      await update();
    }
  }
}
