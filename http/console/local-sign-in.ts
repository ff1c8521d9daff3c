/**
 * One-time sign-in links for the local mode (and a server without OpenID Connect): a random token printed on the
 * terminal at start, valid once and for a short while. Tokens live in this process's memory only, which is right:
 * the process that printed the link is the one that serves it, and a restart prints a new one.
 */
import { trimBaseUrl } from '../../core/urls';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Long enough to open the link after reading the start-up banner; short enough that an old scrollback is useless. */
export const LOCAL_SIGN_IN_TTL_MS = 15 * 60 * 1000;
const TOKEN_BYTES = 32;
/** Links asked for but never used are dropped beyond this many, oldest first. */
const MAX_PENDING = 20;

export const LOCAL_SIGN_IN_PATH = '/auth/local';

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Issues and redeems one-time sign-in tokens. */
export class LocalSignIn {
  /** Only digests are kept, so a heap dump does not hand out a usable link. */
  private readonly pending: { digest: Buffer; expiresAt: number }[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** A new token, valid once within LOCAL_SIGN_IN_TTL_MS. */
  issue(): string {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    this.pending.push({ digest: digest(token), expiresAt: this.now() + LOCAL_SIGN_IN_TTL_MS });
    while (this.pending.length > MAX_PENDING) this.pending.shift();
    return token;
  }

  /** The link to print: the base URL with a fresh token. */
  link(baseUrl: string): string {
    return `${trimBaseUrl(baseUrl)}${LOCAL_SIGN_IN_PATH}?token=${this.issue()}`;
  }

  /** True once for a valid unexpired token; the token is spent either way. */
  redeem(token: string | undefined): boolean {
    if (!token) return false;
    const given = digest(token);
    const now = this.now();
    const index = this.pending.findIndex((p) => timingSafeEqual(p.digest, given));
    if (index < 0) return false;
    const [entry] = this.pending.splice(index, 1);
    return entry !== undefined && entry.expiresAt > now;
  }
}
