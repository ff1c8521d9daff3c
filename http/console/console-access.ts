/**
 * Who may do what, decided on the server for every console action. A global admin (KUROKO_CONSOLE_ADMINS, or the
 * local mode's signed-in person) may do everything; an admin of a definition may change, launch and operate that
 * definition and its instances; everyone else who signed in is a viewer and changes nothing (stars aside, which
 * are their own).
 */
import { ForbiddenError } from '../../core/errors';
import { normalizeEmail } from '../../core/sign-in-rules';
import type { ConsoleRepository } from '../../db/repositories/console-repository';

/** The signed-in person as the pages and actions see them. */
export interface ConsoleUser {
  email: string;
  name: string;
  csrf: string;
  globalAdmin: boolean;
  /** Whether the provider verified the email; admin rights (global or per definition) need a verified one. */
  verified: boolean;
}

/** Role checks over the configured global admins and the definition_admins rows. */
export class ConsoleAccess {
  private readonly admins: ReadonlySet<string>;

  constructor(
    private readonly people: ConsoleRepository,
    admins: readonly string[],
  ) {
    this.admins = new Set(admins.map(normalizeEmail));
  }

  /** True for a global admin. */
  isGlobalAdmin(email: string): boolean {
    return this.admins.has(normalizeEmail(email));
  }

  /** True when the person may change and operate the definition. */
  async canAdminister(user: ConsoleUser, definitionId: number): Promise<boolean> {
    return user.globalAdmin || (user.verified && (await this.people.isDefinitionAdmin(definitionId, user.email)));
  }

  /** canAdminister, answered from the definition's admin list when the caller has already read it. */
  administers(user: ConsoleUser, definitionAdmins: readonly string[]): boolean {
    return user.globalAdmin || (user.verified && definitionAdmins.includes(normalizeEmail(user.email)));
  }

  /** ForbiddenError unless the person administers the definition. */
  async requireDefinitionAdmin(user: ConsoleUser, definitionId: number, action: string): Promise<void> {
    if (!(await this.canAdminister(user, definitionId))) {
      throw new ForbiddenError(`${user.email} may not ${action}: only an admin of job definition ${definitionId} or a global admin may`);
    }
  }

  /** ForbiddenError unless the person is a global admin. */
  requireGlobalAdmin(user: ConsoleUser, action: string): void {
    if (!user.globalAdmin) throw new ForbiddenError(`${user.email} may not ${action}: only a global admin may`);
  }
}
