/**
 * Console sessions kept server-side (migration 0005). The signed cookie carries a random session id; this table
 * holds only its SHA-256, so a database reader cannot forge a cookie, and deleting the row ends the session even
 * for a copy of the cookie.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/ports';
import { normalizeEmail } from '../../core/sign-in-rules';
import type { Database, DbTime } from '../schema';

export interface ConsoleSessionTable {
  id: string;
  email: string;
  created_at: DbTime;
  expires_at: DbTime;
}

// A type alias, not an interface: `withTables` wants an index-compatible record.
type SessionTables = { console_sessions: ConsoleSessionTable };

function digest(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('hex');
}

/** Creates, checks and ends console sessions. */
export class SessionRepository {
  private readonly db: Kysely<Database & SessionTables>;

  constructor(
    root: Kysely<Database>,
    private readonly clock: Clock,
  ) {
    this.db = root.withTables<SessionTables>();
  }

  /** Records a new session; expired sessions are swept on the way (sign-ins are rare, so this costs little). */
  async create(sessionId: string, email: string, expiresAt: Date): Promise<void> {
    const now = this.clock.now();
    await this.db.deleteFrom('console_sessions').where('expires_at', '<', now).execute();
    await this.db.insertInto('console_sessions').values({ id: digest(sessionId), email: normalizeEmail(email), created_at: now, expires_at: expiresAt }).execute();
  }

  /** True while the session exists, belongs to `email` and has not expired. */
  async isActive(sessionId: string, email: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('console_sessions')
      .select('id')
      .where('id', '=', digest(sessionId))
      .where('email', '=', normalizeEmail(email))
      .where('expires_at', '>', this.clock.now())
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Ends one session (sign-out). */
  async revoke(sessionId: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id', '=', digest(sessionId)).execute();
  }
}
