/** The little of `oidc-provider` (which ships no types) that the console's sign-in tests use. */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface Account {
    accountId: string;
    claims(): Record<string, unknown>;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown> & { findAccount?: (ctx: unknown, sub: string) => Account | Promise<Account> });
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
}
