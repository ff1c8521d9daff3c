/**
 * The operator commands over instances: `kuroko launch`, `instances`, `logs`, `retry`, `skip` and `cancel`, each a
 * few calls of the HTTP API through the generated client.
 */
import { EXIT_CODE } from '../sub-command';
import type { CliIo, SubCommand } from '../sub-command';
import {
  call,
  connect,
  findInstance,
  formatLogLine,
  getInstance,
  listDefinitions,
  readLogs,
  resolveDefinition,
  UsageError,
} from './ops-client';
import type { Connection, DefinitionResource, InstanceDetail, InstanceResource } from './ops-client';
import { CONNECTION_HELP, connectionOptions, lastOption, parseOpsArgs } from './ops-args';
import { OUTCOME_EXIT, opsCommand, pollIntervalMs, sleep } from './ops-command';

const ENV_PAIR = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
const INSTANCE_STATUSES = ['working', 'success', 'canceled', 'error'] as const;

function outcomeExit(status: InstanceResource['status']): number {
  if (status === 'success') return OUTCOME_EXIT.success;
  if (status === 'canceled') return OUTCOME_EXIT.canceled;
  if (status === 'error') return OUTCOME_EXIT.error;
  return EXIT_CODE.ok;
}

/** What to do about an instance in error: its failed tokens and the commands that move it on. */
function errorHint(instance: InstanceDetail): string {
  const failed = instance.tokens.filter((t) => t.status === 'failure' || t.status === 'critical');
  const lines = failed.map((t) => `  token ${t.id} at ${t.path}: ${t.message}\n`);
  return `${lines.join('')}  kuroko retry ${instance.id} | kuroko skip ${instance.id} | kuroko cancel ${instance.id}\n`;
}

/**
 * Prints log lines from `offset` until the instance stops working (when `follow`), and returns the instance as it
 * ended and the lines printed. Without `follow` it only waits.
 */
async function watch(conn: Connection, io: CliIo, definitionId: number, instanceId: number, follow: boolean): Promise<InstanceDetail> {
  let offset = 0;
  const interval = pollIntervalMs();
  const printNewLines = async () => {
    for (;;) {
      const lines = await readLogs(conn, definitionId, instanceId, offset);
      if (lines.length === 0) return;
      offset += lines.length;
      io.stdout(lines.map(formatLogLine).join(''));
    }
  };
  for (;;) {
    const instance = await getInstance(conn, definitionId, instanceId);
    if (follow) await printNewLines();
    if (instance.status !== 'working') return instance;
    await sleep(interval);
  }
}

function report(io: CliIo, definition: DefinitionResource, instance: InstanceDetail | InstanceResource): void {
  io.stderr(`instance ${instance.id} of ${definition.name} (definition ${definition.id}): ${instance.status}\n`);
  if (instance.status === 'error' && 'tokens' in instance) io.stderr(errorHint(instance));
}

const LAUNCH_HELP = `usage: kuroko launch NAME|ID [--env KEY=VALUE ...] [--wait] [--follow] [--idempotency-key KEY]

Launches an instance of a job definition through the API and prints its id on stdout.
  --env KEY=VALUE        an environment variable for every command of the instance (repeatable)
  --wait                 wait until the instance ends and exit with its outcome
  --follow               print its log lines as they come (implies --wait)
  --idempotency-key KEY  a repeat with the same key returns the first instance instead of launching again
Exit status: 0 launched (with --wait: succeeded), 3 the instance is in error, 4 it was canceled (also when
prevent_multi blocked the launch), 1 the API refused or could not be reached, 2 bad arguments.
${CONNECTION_HELP}`;

async function runLaunch(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseOpsArgs(argv, { options: ['--env', '--idempotency-key'], flags: ['--wait', '--follow'] });
  if (args.positionals.length !== 1) throw new UsageError('give one job definition: NAME or ID');
  const env: Record<string, string> = {};
  for (const pair of args.options['--env'] ?? []) {
    const match = ENV_PAIR.exec(pair);
    if (!match) throw new UsageError(`--env ${pair}: expected KEY=VALUE with KEY like [A-Za-z_][A-Za-z0-9_]*`);
    env[match[1] as string] = match[2] as string;
  }
  const conn = connect(connectionOptions(args));
  const definition = await resolveDefinition(conn, args.positionals[0] as string);
  const key = lastOption(args, '--idempotency-key');
  const instance = await call(
    `launching ${definition.name}`,
    conn.client.POST('/v1/definitions/{id}/instances', {
      params: { path: { id: definition.id }, header: key !== undefined ? { 'idempotency-key': key } : {} },
      body: Object.keys(env).length > 0 ? { env } : {},
    }),
  );
  io.stdout(`${instance.id}\n`);
  const follow = args.flags.has('--follow');
  if (!follow && !args.flags.has('--wait')) {
    report(io, definition, instance);
    return instance.status === 'canceled' ? OUTCOME_EXIT.canceled : EXIT_CODE.ok;
  }
  const ended = await watch(conn, io, definition.id, instance.id, follow);
  report(io, definition, ended);
  return outcomeExit(ended.status);
}

const INSTANCES_HELP = `usage: kuroko instances [NAME|ID] [--status working|success|canceled|error] [--limit N]

Lists instances newest first: of one job definition, or without one those working or in error of every definition.
${CONNECTION_HELP}`;

async function runInstances(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseOpsArgs(argv, { options: ['--status', '--limit'] });
  if (args.positionals.length > 1) throw new UsageError('give at most one job definition');
  const status = lastOption(args, '--status');
  if (status !== undefined && !(INSTANCE_STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status must be one of ${INSTANCE_STATUSES.join(', ')}`);
  const limitText = lastOption(args, '--limit');
  const limit = limitText === undefined ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive integer');
  const conn = connect(connectionOptions(args));
  const ref = args.positionals[0];
  const definitions = ref !== undefined ? [await resolveDefinition(conn, ref)] : await listDefinitions(conn);
  const statuses = status !== undefined ? [status] : ref !== undefined ? [undefined] : ['working', 'error'];
  const rows: { definition: DefinitionResource; instance: InstanceResource }[] = [];
  for (const definition of definitions) {
    for (const s of statuses) {
      const instances = await call(
        `listing instances of ${definition.name}`,
        conn.client.GET('/v1/definitions/{id}/instances', {
          params: {
            path: { id: definition.id },
            query: { ...(s !== undefined ? { status: s as (typeof INSTANCE_STATUSES)[number] } : {}), ...(limit !== undefined ? { limit } : {}) },
          },
        }),
      );
      rows.push(...instances.map((instance) => ({ definition, instance })));
    }
  }
  rows.sort((a, b) => b.instance.id - a.instance.id);
  const table = [['INSTANCE', 'DEFINITION', 'STATUS', 'CREATED', 'ENDED', 'LAUNCHED BY']];
  for (const { definition, instance } of limit !== undefined ? rows.slice(0, limit) : rows) {
    const ended = instance.finished_at ?? instance.canceled_at ?? instance.error_at ?? '-';
    table.push([String(instance.id), definition.name, instance.status, instance.created_at, ended, instance.launched_by]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  io.stdout(table.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n');
  return EXIT_CODE.ok;
}

const LOGS_HELP = `usage: kuroko logs INSTANCE [--job NAME|ID] [--follow]

Prints an instance's log lines (TIME LEVEL MESSAGE); --follow keeps printing until it ends and exits with its
outcome like kuroko launch --wait. --job names its definition (otherwise every definition is asked).
${CONNECTION_HELP}`;

async function runLogs(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseOpsArgs(argv, { options: ['--job'], flags: ['--follow'] });
  if (args.positionals.length !== 1) throw new UsageError('give one instance id');
  const conn = connect(connectionOptions(args));
  const found = await findInstance(conn, args.positionals[0] as string, lastOption(args, '--job'));
  if (!args.flags.has('--follow')) {
    let offset = 0;
    for (;;) {
      const lines = await readLogs(conn, found.job_definition_id, found.id, offset);
      if (lines.length === 0) return EXIT_CODE.ok;
      offset += lines.length;
      io.stdout(lines.map(formatLogLine).join(''));
    }
  }
  const ended = await watch(conn, io, found.job_definition_id, found.id, true);
  return outcomeExit(ended.status);
}

type TokenAction = 'retry' | 'skip';

const tokenHelp = (action: TokenAction) => `usage: kuroko ${action} INSTANCE [TOKEN] [--job NAME|ID]

${action === 'retry' ? "Runs a failed token's node again" : 'Moves a failed or waiting token past its node'}. Without TOKEN, the instance's only
${action === 'retry' ? 'failed' : 'failed or waiting'} token (the command lists them when there are several).
${CONNECTION_HELP}`;

function tokenCommand(action: TokenAction): SubCommand {
  return opsCommand(action, tokenHelp(action), async (argv, io) => {
    const args = parseOpsArgs(argv, { options: ['--job'] });
    if (args.positionals.length < 1 || args.positionals.length > 2) throw new UsageError('give an instance id and optionally a token id');
    const tokenRef = args.positionals[1];
    if (tokenRef !== undefined && !/^[1-9]\d{0,15}$/.test(tokenRef)) throw new UsageError(`TOKEN must be a token id, not ${tokenRef}`);
    const conn = connect(connectionOptions(args));
    const instance = await findInstance(conn, args.positionals[0] as string, lastOption(args, '--job'));
    let tokenId: number;
    if (tokenRef !== undefined) {
      tokenId = Number(tokenRef);
    } else {
      const eligible = instance.tokens.filter((t) => t.status === 'failure' || (action === 'skip' && t.status === 'waiting'));
      if (eligible.length !== 1) {
        const list = instance.tokens.map((t) => `  token ${t.id} ${t.status} at ${t.path}${t.message ? `: ${t.message}` : ''}\n`).join('');
        throw new UsageError(
          `instance ${instance.id} has ${eligible.length === 0 ? 'no' : eligible.length} token(s) to ${action}; give TOKEN${list ? `:\n${list}` : ''}`.trimEnd(),
        );
      }
      tokenId = (eligible[0] as { id: number }).id;
    }
    const path = { id: instance.job_definition_id, instance_id: instance.id, token_id: tokenId };
    const result = await call(
      `${action} token ${tokenId} of instance ${instance.id}`,
      action === 'retry'
        ? conn.client.POST('/v1/definitions/{id}/instances/{instance_id}/tokens/{token_id}/retry', { params: { path } })
        : conn.client.POST('/v1/definitions/{id}/instances/{instance_id}/tokens/{token_id}/skip', { params: { path } }),
    );
    io.stdout(`instance ${result.id}: ${result.status} (token ${tokenId} ${action === 'retry' ? 'retried' : 'skipped'})\n`);
    return EXIT_CODE.ok;
  });
}

const CANCEL_HELP = `usage: kuroko cancel INSTANCE [--job NAME|ID]

Cancels an instance, killing its running commands.
${CONNECTION_HELP}`;

async function runCancel(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseOpsArgs(argv, { options: ['--job'] });
  if (args.positionals.length !== 1) throw new UsageError('give one instance id');
  const conn = connect(connectionOptions(args));
  const instance = await findInstance(conn, args.positionals[0] as string, lastOption(args, '--job'));
  const result = await call(
    `canceling instance ${instance.id}`,
    conn.client.DELETE('/v1/definitions/{id}/instances/{instance_id}', { params: { path: { id: instance.job_definition_id, instance_id: instance.id } } }),
  );
  io.stdout(`instance ${result.id}: ${result.status}\n`);
  return EXIT_CODE.ok;
}

export const launchCommand = opsCommand('launch', LAUNCH_HELP, runLaunch);
export const instancesCommand = opsCommand('instances', INSTANCES_HELP, runInstances);
export const logsCommand = opsCommand('logs', LOGS_HELP, runLogs);
export const retryCommand = tokenCommand('retry');
export const skipCommand = tokenCommand('skip');
export const cancelCommand = opsCommand('cancel', CANCEL_HELP, runCancel);
