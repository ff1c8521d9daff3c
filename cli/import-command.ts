/**
 * `kuroko import kuroko2 --from mysql://USER:PASS@HOST:PORT/DB --database-url TARGET [options]`: imports a running
 * Kuroko2's definitions (keeping their ids), schedules, tags, admins, stars, memory expectancies, script revisions
 * and optionally recent history into any of our databases, and prints a report (cli/import/kuroko2-importer.ts).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../core/errors';
import { isValidTimeZone } from '../core/schedule';
import { createDatabase, parseDatabaseUrl, redact } from '../db/connection';
import type { DatabaseHandle } from '../db/connection';
import { createIdGenerator } from '../db/id-generator';
import { DEFAULT_KUROKO2_TABLE_PREFIX, Kuroko2Source } from '../db/kuroko2/kuroko2-source';
import { migrateToLatest } from '../db/migrator';
import { Kuroko2ImportRepository } from '../db/repositories/kuroko2-import-repository';
import { loadValidationContext } from '../db/repositories/validation-context-repository';
import { customTasksFromFile, loadCustomTasks } from '../app/config/custom-tasks-config';
import { systemClock } from '../app/engine-services';
import { lastValue, parseCliArgs } from './cli-args';
import { formatReport, importKuroko2 } from './import/kuroko2-importer';
import { EXIT_CODE } from './sub-command';
import type { CliIo, SubCommand } from './sub-command';

const USAGE =
  'usage: kuroko import kuroko2 --from mysql://USER:PASS@HOST:PORT/DB --database-url TARGET [--table-prefix kuroko2_]\n' +
  '         [--dry-run] [--history-days N] [--time-zone ZONE] [--custom-tasks FILE] [--report FILE] [--merge] [--suspend-all]\n';

const HELP = `${USAGE}
Reads Kuroko2's database (schema version 34) and writes its job definitions into TARGET (sqlite:FILE, mysql://…
or data-api://…, or KUROKO_DATABASE_URL), keeping their ids so /v1/definitions/ID keeps naming the same job.

  --from URL            the Kuroko2 MySQL database (read only)
  --table-prefix P      Kuroko2's table_name_prefix (default kuroko2_; '' for none)
  --time-zone ZONE      the IANA time zone of every imported definition (default UTC; Kuroko2 used its server's)
  --custom-tasks FILE   JSON mapping each custom task to a command template (default: KUROKO_CUSTOM_TASKS /
                        KUROKO_CUSTOM_TASKS_FILE), so scripts using them import valid
  --history-days N      also import instances finished in the last N days, with logs and executions (default 0)
  --suspend-all         import every definition suspended (run again without it to resume them)
  --merge               overwrite definitions of TARGET whose ids Kuroko2 also uses (refused otherwise)
  --dry-run             write nothing; print the same report
  --report FILE         also write the report as JSON

A definition whose script does not validate is imported unchanged but suspended, and listed in the report. Running
the import again updates what changed and creates nothing twice. Exit status: 0 done, 1 refused (id collisions
without --merge), 2 bad arguments.
`;

const FLAGS = ['--dry-run', '--merge', '--suspend-all'] as const;
const OPTIONS = ['--from', '--database-url', '--table-prefix', '--history-days', '--time-zone', '--custom-tasks', '--report'];

/** Runs `kuroko import`. */
export async function runImport(args: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [kind, ...rest] = args;
  if (kind === '--help' || kind === '-h') {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  if (kind !== 'kuroko2') {
    io.stderr(`kuroko import: ${kind === undefined ? 'say what to import' : `cannot import \`${kind}\``}: only \`kuroko2\` exists\n${USAGE}`);
    return EXIT_CODE.usage;
  }
  const flags = new Set(rest.filter((a) => (FLAGS as readonly string[]).includes(a)));
  const parsed = parseCliArgs(rest.filter((a) => !(FLAGS as readonly string[]).includes(a)), OPTIONS);
  if (parsed.help) {
    io.stdout(HELP);
    return EXIT_CODE.ok;
  }
  const from = lastValue(parsed, '--from');
  const targetUrl = lastValue(parsed, '--database-url') ?? env.KUROKO_DATABASE_URL;
  const timeZone = lastValue(parsed, '--time-zone') ?? 'UTC';
  const historyText = lastValue(parsed, '--history-days') ?? '0';
  const prefix = lastValue(parsed, '--table-prefix') ?? DEFAULT_KUROKO2_TABLE_PREFIX;
  if (!from) parsed.problems.push('the Kuroko2 database is required: --from mysql://USER:PASS@HOST:PORT/DB');
  if (!targetUrl) parsed.problems.push('a target database URL is required: --database-url or KUROKO_DATABASE_URL');
  if (!isValidTimeZone(timeZone)) parsed.problems.push(`--time-zone \`${timeZone}\` is not an IANA time zone`);
  if (!/^\d{1,5}$/.test(historyText)) parsed.problems.push('--history-days takes a whole number of days');
  if (!/^\w*$/.test(prefix)) parsed.problems.push('--table-prefix may hold only letters, digits and _');
  if (parsed.problems.length > 0 || !from || !targetUrl) {
    io.stderr(`kuroko import: ${parsed.problems.join('; ')}\n${USAGE}`);
    return EXIT_CODE.usage;
  }

  let customTasks;
  let source: Kuroko2Source | undefined;
  let target: DatabaseHandle | undefined;
  let newSqliteTarget = false;
  try {
    const file = lastValue(parsed, '--custom-tasks');
    customTasks = file ? customTasksFromFile(file) : loadCustomTasks(env);
    source = Kuroko2Source.open(from, prefix);
    const parsedTarget = parseDatabaseUrl(targetUrl);
    // Opening a SQLite file creates it: a dry run against one that does not exist plans against an empty database.
    newSqliteTarget = flags.has('--dry-run') && parsedTarget.dialect === 'sqlite' && parsedTarget.filename !== ':memory:' && !existsSync(parsedTarget.filename);
    target = createDatabase(newSqliteTarget ? 'sqlite::memory:' : targetUrl);
  } catch (error) {
    await source?.close();
    if (error instanceof ConfigError || error instanceof RangeError) {
      io.stderr(`kuroko import: ${error.message}\n`);
      return EXIT_CODE.usage;
    }
    throw error;
  }
  try {
    const dryRun = flags.has('--dry-run');
    if (dryRun) {
      const tables = new Set((await target.db.introspection.getTables()).map((t) => t.name));
      if (newSqliteTarget || !tables.has('job_definitions')) {
        // A new target (a `kuroko dev` data dir not started yet): plan against an empty database, write nothing.
        io.stdout('kuroko import: the target has no tables yet; planning against an empty database\n');
        if (!newSqliteTarget) {
          await target.close();
          target = createDatabase('sqlite::memory:');
        }
        await migrateToLatest(target.db);
      } else if (!tables.has('kuroko2_imports')) {
        io.stderr(`kuroko import: the target's schema is behind: run \`kuroko migrate --database-url ${redact(targetUrl)}\` first (a dry run writes nothing)\n`);
        return EXIT_CODE.usage;
      }
    } else {
      await migrateToLatest(target.db);
    }
    const ids = createIdGenerator(target.db);
    const repository = new Kuroko2ImportRepository(target.db, ids, systemClock);
    const context = await loadValidationContext(target.db, systemClock);
    io.stdout(`kuroko import: ${redact(from)} (tables ${prefix || '(no prefix)'}*) into ${redact(targetUrl)}${dryRun ? ', dry run' : ''}\n`);
    const report = await importKuroko2(source, repository, context, {
      dryRun,
      merge: flags.has('--merge'),
      suspendAll: flags.has('--suspend-all'),
      historyDays: Number(historyText),
      timeZone,
      customTasks,
      now: systemClock.now(),
      progress: (line) => io.stdout(line),
    });
    io.stdout(formatReport(report));
    const reportFile = lastValue(parsed, '--report');
    if (reportFile) writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
    return report.refused ? EXIT_CODE.problems : EXIT_CODE.ok;
  } finally {
    await source.close();
    await target.close();
  }
}

export const importCommand: SubCommand = { run: (args, io) => runImport(args, io) };
