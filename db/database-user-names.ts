/**
 * The roles and default names of the deployment's MySQL users (db/database-users.ts): plain constants the CDK app
 * shares without loading the database code.
 */
export const DATABASE_ROLE = { agent: 'agent', runtime: 'runtime' } as const;
export type DatabaseRole = (typeof DATABASE_ROLE)[keyof typeof DATABASE_ROLE];

/** The default user names (self-hosted `kuroko migrate --create-users`; the CDK secrets use the same). */
export const DEFAULT_DATABASE_USERS: Readonly<Record<DatabaseRole, string>> = { agent: 'kuroko_agent', runtime: 'kuroko_runtime' };
