/**
 * A limit on failed API logins per client name and per address. While a key is blocked, requests are answered 429
 * with `Retry-After` before any scrypt runs, so guessing costs the attacker time and costs us nothing. The counts
 * live in the database (login_failures), shared by every Lambda container and server process; docs/security.md
 * says why. A client whose exact credentials this process verified recently still passes while its name is
 * blocked (the check is an HMAC, not scrypt), so someone hammering a name cannot lock out a busy client.
 */
import type { LoginLimitRepository, LoginLimitRule } from '../db/repositories/login-limit-repository';

export interface LoginLimits {
  /** Failures of one client name (any address) before the name is blocked until the window ends. */
  perClient: LoginLimitRule;
  /** Failures from one address (any name) before the address is blocked until the window ends. */
  perAddress: LoginLimitRule;
}

const WINDOW_MS = 15 * 60 * 1000;

/** Ten wrong secrets for a name, or fifty from an address, in a quarter of an hour. */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perClient: { maxFailures: 10, windowMs: WINDOW_MS },
  perAddress: { maxFailures: 50, windowMs: WINDOW_MS },
};

/** Too many failed logins: answer 429 with this Retry-After. */
export class LoginLimitedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed logins; try again in ${retryAfterSeconds} seconds`);
    this.name = 'LoginLimitedError';
  }
}

/** Longest stored key part: client names are at most 100 characters, IPv6 text at most 45. */
const MAX_KEY_PART = 100;

/** Checks and counts failed logins. */
export class LoginLimiter {
  constructor(
    private readonly repository: LoginLimitRepository,
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  private keys(name: string, address: string | undefined): { key: string; rule: LoginLimitRule }[] {
    const keys = [{ key: `client:${name.slice(0, MAX_KEY_PART)}`, rule: this.limits.perClient }];
    if (address) keys.push({ key: `address:${address.slice(0, MAX_KEY_PART)}`, rule: this.limits.perAddress });
    return keys;
  }

  /** Throws LoginLimitedError while the name or the address is blocked. */
  async check(name: string, address: string | undefined): Promise<void> {
    const until = await this.repository.blockedUntil(this.keys(name, address).map((k) => k.key));
    if (until) throw new LoginLimitedError(Math.max(1, Math.ceil((until.getTime() - this.now()) / 1000)));
  }

  /** Counts a failed login against the name and the address. */
  async recordFailure(name: string, address: string | undefined): Promise<void> {
    for (const { key, rule } of this.keys(name, address)) await this.repository.recordFailure(key, rule);
  }
}
