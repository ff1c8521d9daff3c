/**
 * `kuroko api-client create NAME [--scope read|launch|admin] --database-url URL`: creates an API client with a new
 * random secret and prints the secret once (only its scrypt hash is stored). `list` prints every client and its
 * scope, `revoke NAME` deletes one, `rotate NAME` gives it a new secret (printed once; the old one stops working).
 */
import { ConfigError, ConflictError } from '../core/errors';
import { createDatabase } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { API_CLIENT_NAME_PATTERN, API_SCOPE, isApiScope } from '../db/repositories/api-client-repository';
import { generateSecret, hashSecret } from '../http/api/http-auth';
import { createEngineServices } from '../app/engine-services';
import { ENV_KEYS } from '../app/config/env-keys';
import { lastValue, parseCliArgs } from './cli-args';
import { EXIT_CODE } from './sub-command';
import type { CliIo, SubCommand } from './sub-command';

const USAGE =
  'usage: kuroko api-client create NAME [--scope read|launch|admin] --database-url URL   (or KUROKO_DATABASE_URL)\n' +
  '       kuroko api-client list | revoke NAME | rotate NAME --database-url URL\n';
const ACTIONS = ['create', 'list', 'revoke', 'rotate'] as const;
type Action = (typeof ACTIONS)[number];
const isAction = (value: string): value is Action => (ACTIONS as readonly string[]).includes(value);

const HELP = `${USAGE}
Creates an API client for HTTP Basic authentication and prints its secret once; keep it, it cannot be shown again.
Scopes: read (GET requests only), launch (read plus launching, cancelling, retrying and skipping instances),
admin (everything, the default).
list prints each client's name, scope and creation time; revoke NAME deletes a client (its requests fail at once);
rotate NAME prints a new secret once and the old one stops working at once.
`;

/** Runs `kuroko api-client`. */
export async function runApiClient(args: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h' || action === undefined) {
    (action === undefined ? io.stderr : io.stdout)(action === undefined ? USAGE : HELP);
    return action === undefined ? EXIT_CODE.usage : EXIT_CODE.ok;
  }
  const parsed = parseCliArgs(rest.filter((a, i) => !(i === 0 && !a.startsWith('-'))), ['--scope', '--database-url']);
  if (parsed.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  const name = rest[0] !== undefined && !rest[0].startsWith('-') ? rest[0] : undefined;
  if (!isAction(action)) parsed.problems.push(`unknown action ${action}: use create, list, revoke or rotate`);
  if (name === undefined && action !== 'list') parsed.problems.push('a client NAME is required');
  else if (name !== undefined && !API_CLIENT_NAME_PATTERN.test(name)) parsed.problems.push(`the name must match ${API_CLIENT_NAME_PATTERN.source}`);
  const scope = lastValue(parsed, '--scope') ?? API_SCOPE.admin;
  if (!isApiScope(scope)) parsed.problems.push(`unknown scope ${scope}: use read, launch or admin`);
  const url = lastValue(parsed, '--database-url') ?? env[ENV_KEYS.databaseUrl];
  if (!url) parsed.problems.push('a database URL is required: --database-url or KUROKO_DATABASE_URL');
  if (parsed.problems.length > 0 || !url || !isAction(action) || (name === undefined && action !== 'list') || !isApiScope(scope)) {
    io.stderr(`kuroko api-client: ${parsed.problems.join('; ')}\n${USAGE}`);
    return EXIT_CODE.usage;
  }
  let handle;
  try {
    handle = createDatabase(url);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`kuroko api-client: ${error.message}\n`);
      return EXIT_CODE.usage;
    }
    throw error;
  }
  try {
    const repository = createEngineServices(handle, { ids: createIdGenerator(handle.db, { blockSize: 1 }) }).stores.apiClients;
    if (action === 'list') {
      for (const client of await repository.listSummaries()) io.stdout(`${client.name}\t${client.scope}\t${client.createdAt.toISOString()}\n`);
      return EXIT_CODE.ok;
    }
    if (name === undefined) return EXIT_CODE.usage;
    if (action === 'revoke' || action === 'rotate') {
      const secret = generateSecret();
      const done = action === 'revoke' ? await repository.delete(name) : await repository.replaceSecret(name, await hashSecret(secret));
      if (!done) {
        io.stderr(`kuroko api-client: there is no API client named ${name}\n`);
        return EXIT_CODE.problems;
      }
      if (action === 'rotate') io.stdout(`${secret}\n`);
      io.stderr(`kuroko api-client: ${action === 'revoke' ? `revoked ${name}` : `rotated the secret of ${name}; the secret above is shown only once`}\n`);
      return EXIT_CODE.ok;
    }
    const secret = generateSecret();
    await repository.create(name, await hashSecret(secret), scope);
    io.stdout(`${secret}\n`);
    io.stderr(`kuroko api-client: created ${name} with the ${scope} scope; the secret above is shown only once\n`);
    return EXIT_CODE.ok;
  } catch (error) {
    if (error instanceof ConflictError) {
      io.stderr(`kuroko api-client: ${error.message}\n`);
      return EXIT_CODE.problems;
    }
    throw error;
  } finally {
    await handle.close();
  }
}

export const apiClientCommand: SubCommand = { run: (args, io) => runApiClient(args, io) };
