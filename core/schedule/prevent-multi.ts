/** prevent_multi: whether existing tokens of a definition block a new launch (Kuroko2 4.3, with D7). */
import type { PreventMulti, TokenStatus } from '../model';
import { PREVENT_MULTI, TOKEN_STATUS } from '../model';

/** The warning logged on an instance canceled at launch because prevent_multi blocked it (Kuroko2's text). */
export const PREVENT_MULTI_CANCEL_MESSAGE = 'This job was canceled because there is already a working or erred job instance.';

const WORKING_STATUSES: readonly TokenStatus[] = [TOKEN_STATUS.working, TOKEN_STATUS.waiting];
const ERROR_STATUSES: readonly TokenStatus[] = [TOKEN_STATUS.failure, TOKEN_STATUS.critical];

/** Token statuses that block a launch for each setting; `waiting` counts as working (D7). */
export const PREVENT_MULTI_BLOCKING_STATUSES: Readonly<Record<PreventMulti, readonly TokenStatus[]>> = {
  [PREVENT_MULTI.none]: [],
  [PREVENT_MULTI.workingOrError]: [...WORKING_STATUSES, ...ERROR_STATUSES],
  [PREVENT_MULTI.working]: WORKING_STATUSES,
  [PREVENT_MULTI.error]: ERROR_STATUSES,
};

/** True when any token of the definition's instances (all of them, in any instance) blocks a new launch. */
export function isLaunchBlocked(preventMulti: PreventMulti, tokenStatuses: readonly TokenStatus[]): boolean {
  const blocking = PREVENT_MULTI_BLOCKING_STATUSES[preventMulti];
  return tokenStatuses.some((status) => blocking.includes(status));
}
