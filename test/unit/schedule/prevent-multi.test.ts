import { describe, expect, it } from 'vitest';
import type { PreventMulti, TokenStatus } from '../../../core/model';
import { PREVENT_MULTI, TOKEN_STATUS } from '../../../core/model';
import { isLaunchBlocked, PREVENT_MULTI_CANCEL_MESSAGE } from '../../../core/schedule';

const { working, waiting, failure, critical, finished } = TOKEN_STATUS;

describe('isLaunchBlocked (Kuroko2 4.3 with D7: waiting counts as working)', () => {
  const table: [PreventMulti, Record<TokenStatus, boolean>][] = [
    [PREVENT_MULTI.none, { working: false, waiting: false, failure: false, critical: false, finished: false }],
    [PREVENT_MULTI.workingOrError, { working: true, waiting: true, failure: true, critical: true, finished: false }],
    [PREVENT_MULTI.working, { working: true, waiting: true, failure: false, critical: false, finished: false }],
    [PREVENT_MULTI.error, { working: false, waiting: false, failure: true, critical: true, finished: false }],
  ];

  for (const [setting, expected] of table) {
    for (const [status, blocked] of Object.entries(expected) as [TokenStatus, boolean][]) {
      it(`prevent_multi ${setting} with a ${status} token: ${blocked ? 'blocked' : 'launches'}`, () => {
        expect(isLaunchBlocked(setting, [finished, status])).toBe(blocked);
      });
    }
  }

  it('never blocks without tokens', () => {
    for (const setting of Object.values(PREVENT_MULTI)) expect(isLaunchBlocked(setting, [])).toBe(false);
  });

  it('looks at every token, not only the first', () => {
    expect(isLaunchBlocked(PREVENT_MULTI.error, [working, waiting, finished, critical])).toBe(true);
    expect(isLaunchBlocked(PREVENT_MULTI.working, [failure, critical, waiting])).toBe(true);
  });

  it("keeps Kuroko2's cancel message", () => {
    expect(PREVENT_MULTI_CANCEL_MESSAGE).toBe('This job was canceled because there is already a working or erred job instance.');
  });
});
