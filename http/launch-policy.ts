/**
 * Who may launch an ad-hoc script through the API. A script is arbitrary code on the workers, so it needs the admin
 * scope (the definition's own script is what `launch` clients are trusted to start). And an ad-hoc script's
 * `sub_process:` may start only definitions that allow API launches: `api_allowed: false` means the API never
 * starts that definition, directly or through a script (an admin who wants it must say so on the definition, which
 * leaves a revision behind).
 */
import { parseScriptRecovering } from '../core/dsl/script-parser';
import { subProcessTargets } from '../core/dsl/token-budget';
import { ForbiddenError } from '../core/errors';
import { API_SCOPE, scopeAllows } from '../db/repositories/api-client-repository';
import type { DefinitionRepository } from '../db/repositories/definition-repository';
import type { AuthenticatedClient } from './api/http-auth';

/** ForbiddenError unless `client` may launch `script` ad hoc. An unknown sub_process target is left to the engine. */
export async function requireAdHocLaunchRights(client: AuthenticatedClient, script: string, definitions: Pick<DefinitionRepository, 'find'>): Promise<void> {
  if (!scopeAllows(client.scope, API_SCOPE.admin)) {
    throw new ForbiddenError(`API client ${client.name} has the ${client.scope} scope; an ad-hoc script needs ${API_SCOPE.admin}`);
  }
  for (const id of subProcessTargets(parseScriptRecovering(script).root)) {
    const target = await definitions.find(id);
    if (target && !target.apiAllowed) {
      throw new ForbiddenError(`the script's sub_process: ${id} (${target.name}) is not allowed to be executed via API`);
    }
  }
}
