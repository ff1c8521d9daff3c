/**
 * Custom tasks: a deployment's own task types, as Kuroko2's `custom_tasks:` in `kuroko2.yml` (a name mapped to a
 * Ruby class that usually wraps `execute` with a fixed command, such as the user guide's `my_project_runner:`).
 * Here a name maps to a command template. A node `my_project_runner: MyProject::Batch1.run` runs the template with
 * `{{option}}` replaced by the option quoted as one shell word (or, without the placeholder, the quoted option
 * appended), with the token's environment as for `execute:`. Validated like `execute:` (an option is required).
 *
 * The mapping comes in as typed data (parsed here from the JSON a deployment configures); nothing here reads a
 * file or the environment.
 */
import { isTaskType, REJECTED_TASK_TYPES } from './task-types';

/** One custom task: its name as written in scripts and the command template it runs. */
export interface CustomTask {
  readonly name: string;
  readonly command: string;
}

/** The custom tasks of a deployment, by name. */
export type CustomTasks = ReadonlyMap<string, CustomTask>;

/** Where a custom task's command receives its option. */
export const OPTION_PLACEHOLDER = '{{option}}';

const CUSTOM_TASK_NAME = /^[a-z][a-z0-9_]*$/;
export const CUSTOM_TASK_LIMITS = { nameLength: 64, commandLength: 4096, tasks: 100 } as const;

export const NO_CUSTOM_TASKS: CustomTasks = new Map();

/** Quotes text as one POSIX shell word. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The command a custom task node runs. */
export function customTaskShell(task: CustomTask, option: string): string {
  const quoted = shellQuote(option);
  return task.command.includes(OPTION_PLACEHOLDER) ? task.command.replaceAll(OPTION_PLACEHOLDER, quoted) : `${task.command} ${quoted}`;
}

export type CustomTasksResult = { ok: true; tasks: CustomTasks } | { ok: false; problems: string[] };

/**
 * Reads a mapping `{ "name": "command template", … }` (or `{ "name": { "command": "…" } }`), checking each name
 * (lower-case letters, digits and `_`, not a built-in task type nor `kuroko_runner`) and command (not blank).
 */
export function parseCustomTasks(value: unknown): CustomTasksResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problems: ['custom tasks must be a JSON object mapping a task name to a command template'] };
  }
  const problems: string[] = [];
  const tasks = new Map<string, CustomTask>();
  const entries = Object.entries(value);
  if (entries.length > CUSTOM_TASK_LIMITS.tasks) problems.push(`at most ${CUSTOM_TASK_LIMITS.tasks} custom tasks are allowed, not ${entries.length}`);
  for (const [name, raw] of entries) {
    const command = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null && 'command' in raw ? (raw as { command: unknown }).command : undefined;
    if (!CUSTOM_TASK_NAME.test(name) || name.length > CUSTOM_TASK_LIMITS.nameLength) {
      problems.push(`custom task \`${name}\`: a name is lower-case letters, digits and _ (starting with a letter), at most ${CUSTOM_TASK_LIMITS.nameLength} characters`);
      continue;
    }
    if (isTaskType(name) || Object.hasOwn(REJECTED_TASK_TYPES, name)) {
      problems.push(`custom task \`${name}\`: the name is a built-in task type`);
      continue;
    }
    if (typeof command !== 'string' || command.trim() === '') {
      problems.push(`custom task \`${name}\`: needs a command template (a non-blank string)`);
      continue;
    }
    if (command.length > CUSTOM_TASK_LIMITS.commandLength) {
      problems.push(`custom task \`${name}\`: the command is longer than ${CUSTOM_TASK_LIMITS.commandLength} characters`);
      continue;
    }
    tasks.set(name, { name, command });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, tasks };
}
