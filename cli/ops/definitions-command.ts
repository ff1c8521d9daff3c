/**
 * Definitions as code: `kuroko definitions export DIR` writes every job definition as a file
 * (cli/ops/definition-file.ts), `kuroko definitions apply DIR [--prune] [--dry-run]` makes the deployment match
 * the files through the API. Names are the identity (a file's definition keeps its id); every file is read and
 * every script validated before anything changes, so one bad file changes nothing.
 */
import { readdir, readFile, unlink, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { validateScript } from '../../core/dsl/script-validator';
import { EXIT_CODE } from '../sub-command';
import type { CliIo } from '../sub-command';
import type { components } from './api-types';
import {
  DEFINITION_FILE_EXTENSION,
  DefinitionFileError,
  fileNameFor,
  formatDefinitionFile,
  HEADER_START,
  parseDefinitionFile,
  SETTINGS,
} from './definition-file';
import type { DefinitionFile, SettingKey, SettingValue } from './definition-file';
import { call, connect, listDefinitions, OpsError, UsageError } from './ops-client';
import type { Connection, DefinitionResource } from './ops-client';
import { CONNECTION_HELP, connectionOptions, parseOpsArgs } from './ops-args';
import { opsCommand } from './ops-command';
import { unifiedDiff } from './text-diff';

type InputBody = components['schemas']['JobDefinitionInput'];

const HELP = `usage: kuroko definitions export DIR
       kuroko definitions apply DIR [--prune] [--dry-run]

export  writes each job definition to DIR/NAME.kuroko: a header of "# key: value" settings (cron, suspend_cron,
        tags, time_zone, prevent_multi, notify flags, api_allowed, slack_channel, webhook_url, description...)
        then the script as it is. Files of definitions that no longer exist are removed.
apply   reads every DIR/*.kuroko, validates every script (nothing changes if any file or script is wrong), prints
        the difference for each definition (settings, then the script as a unified diff) and makes it so through
        the API: creates, updates (ids are kept: the name is the identity), and with --prune deletes definitions
        that have no file. --dry-run prints the differences and changes nothing.
A setting left out of a file is not managed by it: the deployed value stays (a new definition gets the default).
Exit status: 0 done (or nothing to do), 1 a file, a script or the API refused (see the messages), 2 bad arguments.
${CONNECTION_HELP}`;

/** A definition's settings as a file holds them. */
function settingsOf(d: DefinitionResource): DefinitionFile['settings'] {
  const settings: Partial<Record<SettingKey, SettingValue>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) settings[key] = d[key];
  return { ...settings, name: d.name };
}

const UNORDERED: ReadonlySet<SettingKey> = new Set(['tags', 'cron', 'suspend_cron']);

function sameValue(key: SettingKey, a: SettingValue | undefined, b: SettingValue | undefined): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    const norm = (list: string[]) => (UNORDERED.has(key) ? [...list].sort() : list);
    return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
  }
  return a === b;
}

function show(value: SettingValue | undefined): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

/** The request body for the given settings (only the keys present). */
function inputBody(settings: Partial<Record<SettingKey, SettingValue>>, script: string | undefined): InputBody {
  const s = settings;
  const str = (v: SettingValue | undefined) => v as string;
  const list = (v: SettingValue | undefined) => v as string[];
  const body: InputBody = {
    ...(s.name !== undefined ? { name: str(s.name) } : {}),
    ...(s.description !== undefined ? { description: str(s.description) } : {}),
    ...(s.cron !== undefined ? { cron: list(s.cron) } : {}),
    ...(s.suspend_cron !== undefined ? { suspend_cron: list(s.suspend_cron) } : {}),
    ...(s.time_zone !== undefined ? { time_zone: str(s.time_zone) } : {}),
    ...(s.tags !== undefined ? { tags: list(s.tags) } : {}),
    ...(s.prevent_multi !== undefined ? { prevent_multi: s.prevent_multi as number } : {}),
    ...(s.catch_up_window_minutes !== undefined ? { catch_up_window_minutes: s.catch_up_window_minutes as number } : {}),
    ...(s.notify_cancellation !== undefined ? { notify_cancellation: s.notify_cancellation as boolean } : {}),
    ...(s.hipchat_notify_finished !== undefined ? { hipchat_notify_finished: s.hipchat_notify_finished as boolean } : {}),
    ...(s.api_allowed !== undefined ? { api_allowed: s.api_allowed as boolean } : {}),
    ...(s.slack_channel !== undefined ? { slack_channel: str(s.slack_channel) } : {}),
    ...(s.webhook_url !== undefined ? { webhook_url: s.webhook_url as string | null } : {}),
    ...(script !== undefined ? { script } : {}),
  };
  return body;
}

async function runExport(conn: Connection, dir: string, io: CliIo): Promise<number> {
  const definitions = await listDefinitions(conn);
  await mkdir(dir, { recursive: true });
  const written = new Set<string>();
  for (const d of definitions) {
    let file = fileNameFor(d.name);
    // Two names that make the same file name: the later definition's file carries its id.
    if (written.has(file)) file = file.replace(new RegExp(`\\${DEFINITION_FILE_EXTENSION}$`), `-${d.id}${DEFINITION_FILE_EXTENSION}`);
    written.add(file);
    await writeFile(join(dir, file), formatDefinitionFile(settingsOf(d), d.script));
  }
  let removed = 0;
  for (const file of await readdir(dir)) {
    if (!file.endsWith(DEFINITION_FILE_EXTENSION) || written.has(file)) continue;
    // Only files an export wrote: a definition deleted since.
    if ((await readFile(join(dir, file), 'utf8')).startsWith(HEADER_START)) {
      await unlink(join(dir, file));
      removed++;
    }
  }
  io.stdout(`wrote ${definitions.length} definition(s) to ${dir}${removed > 0 ? `, removed ${removed} file(s) of deleted definitions` : ''}\n`);
  return EXIT_CODE.ok;
}

interface Planned {
  file: string;
  parsed: DefinitionFile;
  deployed: DefinitionResource | undefined;
  changedSettings: SettingKey[];
  scriptChanged: boolean;
}

/** Reads every file of `dir`; every problem of every file is reported before giving up. */
async function readFiles(dir: string): Promise<{ files: { file: string; parsed: DefinitionFile }[]; problems: string[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => f.endsWith(DEFINITION_FILE_EXTENSION)).sort();
  } catch (error) {
    throw new UsageError(`cannot read ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const files: { file: string; parsed: DefinitionFile }[] = [];
  const problems: string[] = [];
  const byName = new Map<string, string>();
  for (const file of names) {
    const path = join(dir, file);
    try {
      const parsed = parseDefinitionFile(await readFile(path, 'utf8'));
      const other = byName.get(parsed.settings.name);
      if (other !== undefined) problems.push(`${path}:2: the name ${parsed.settings.name} is also the name in ${join(dir, other)}`);
      byName.set(parsed.settings.name, file);
      files.push({ file: path, parsed });
    } catch (error) {
      if (!(error instanceof DefinitionFileError)) throw error;
      problems.push(`${path}:${error.line}: ${error.message}`);
    }
  }
  return { files, problems };
}

/** A script problem the API reports, placed in the file (the header's lines come first). */
const inFile = (p: Planned) => (line: number, column: number) => `${p.file}:${line + p.parsed.headerLines}:${column}`;

async function runApply(conn: Connection, dir: string, options: { prune: boolean; dryRun: boolean }, io: CliIo): Promise<number> {
  const { files, problems } = await readFiles(dir);
  const deployed = await listDefinitions(conn);
  const deployedIds = new Set(deployed.map((d) => d.id));
  for (const { file, parsed } of files) {
    // `wait:` names definitions by id: those deployed now. Queue names are checked by the API when applied.
    for (const p of validateScript(parsed.script, { definitionExists: (id) => deployedIds.has(id) })) {
      problems.push(`${file}:${p.line + parsed.headerLines}:${p.column}: ${p.message}`);
    }
  }
  if (problems.length > 0) {
    io.stderr(`${problems.join('\n')}\nkuroko definitions apply: nothing changed (${problems.length} problem(s))\n`);
    return EXIT_CODE.problems;
  }
  const byName = new Map(deployed.map((d) => [d.name, d]));
  const plan: Planned[] = files.map(({ file, parsed }) => {
    const current = byName.get(parsed.settings.name);
    const changedSettings = current
      ? (Object.keys(SETTINGS) as SettingKey[]).filter((k) => parsed.settings[k] !== undefined && !sameValue(k, parsed.settings[k], current[k]))
      : (Object.keys(SETTINGS) as SettingKey[]).filter((k) => parsed.settings[k] !== undefined);
    return { file, parsed, deployed: current, changedSettings, scriptChanged: !current || current.script !== parsed.script };
  });
  const inFiles = new Set(files.map((f) => f.parsed.settings.name));
  const toDelete = options.prune ? deployed.filter((d) => !inFiles.has(d.name)) : [];
  const counts = { create: 0, change: 0, unchanged: 0, delete: toDelete.length };

  for (const p of plan) {
    const name = p.parsed.settings.name;
    if (p.deployed && p.changedSettings.length === 0 && !p.scriptChanged) {
      counts.unchanged++;
      continue;
    }
    const lines: string[] = [];
    if (!p.deployed) {
      counts.create++;
      lines.push(`+ ${name} (${p.file}): create`);
      for (const k of p.changedSettings.filter((k) => k !== 'name')) lines.push(`    ${k}: ${show(p.parsed.settings[k])}`);
      lines.push(...unifiedDiff('', p.parsed.script).map((l) => `    ${l}`));
    } else {
      counts.change++;
      lines.push(`~ ${name} (definition ${p.deployed.id}, ${p.file}): change`);
      for (const k of p.changedSettings) lines.push(`    ${k}: ${show(p.deployed[k])} -> ${show(p.parsed.settings[k])}`);
      if (p.scriptChanged) lines.push('    script:', ...unifiedDiff(p.deployed.script, p.parsed.script).map((l) => `    ${l}`));
    }
    io.stdout(`${lines.join('\n')}\n`);
  }
  for (const d of toDelete) io.stdout(`- ${d.name} (definition ${d.id}): delete (no file, --prune)\n`);
  const summary = `${counts.create} to create, ${counts.change} to change, ${counts.delete} to delete, ${counts.unchanged} unchanged`;
  if (options.dryRun) {
    io.stdout(`${summary} (dry run: nothing changed)\n`);
    return EXIT_CODE.ok;
  }

  if (counts.create + counts.change + counts.delete === 0) {
    io.stdout(`${summary}: nothing to change\n`);
    return EXIT_CODE.ok;
  }
  let done = 0;
  const progress = () => (done > 0 ? ` after ${done} change(s) were applied` : ' (nothing was changed)');
  try {
    // Creates first, so a changed `wait:` may name a new definition; deletes last.
    for (const p of plan.filter((q) => !q.deployed)) {
      await call(
        `creating ${p.parsed.settings.name}`,
        conn.client.POST('/v1/definitions', { body: { ...inputBody(p.parsed.settings, undefined), name: p.parsed.settings.name, script: p.parsed.script } }),
        inFile(p),
      );
      done++;
    }
    for (const p of plan.filter((q) => q.deployed && (q.changedSettings.length > 0 || q.scriptChanged))) {
      const changed: Partial<Record<SettingKey, SettingValue>> = {};
      for (const k of p.changedSettings) changed[k] = p.parsed.settings[k] as SettingValue;
      const id = (p.deployed as DefinitionResource).id;
      await call(
        `changing ${p.parsed.settings.name}`,
        conn.client.PUT('/v1/definitions/{id}', { params: { path: { id } }, body: inputBody(changed, p.scriptChanged ? p.parsed.script : undefined) }),
        inFile(p),
      );
      done++;
    }
    for (const d of toDelete) {
      await call(`deleting ${d.name}`, conn.client.DELETE('/v1/definitions/{id}', { params: { path: { id: d.id } } }));
      done++;
    }
  } catch (error) {
    if (error instanceof OpsError) throw new OpsError(`${error.message}\nstopped${progress()}`);
    throw error;
  }
  io.stdout(`${summary}: applied\n`);
  return EXIT_CODE.ok;
}

async function runDefinitions(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseOpsArgs(argv, { flags: ['--prune', '--dry-run'] });
  const [action, dir, ...rest] = args.positionals;
  if ((action !== 'export' && action !== 'apply') || dir === undefined || rest.length > 0) throw new UsageError('give export DIR or apply DIR');
  if (action === 'export' && args.flags.size > 0) throw new UsageError('--prune and --dry-run are options of apply');
  const conn = connect(connectionOptions(args));
  return action === 'export' ? runExport(conn, dir, io) : runApply(conn, dir, { prune: args.flags.has('--prune'), dryRun: args.flags.has('--dry-run') }, io);
}

export const definitionsCommand = opsCommand('definitions', HELP, runDefinitions);
