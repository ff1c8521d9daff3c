/**
 * A deployment's custom tasks (core/dsl/custom-tasks.ts), from its environment:
 * - `KUROKO_CUSTOM_TASKS`: the mapping as JSON text, `{"my_project_runner": "cd /srv/app && bin/run {{option}}"}`
 *   (the CDK deploy config's `customTasks` is passed to the Lambdas this way);
 * - `KUROKO_CUSTOM_TASKS_FILE`: the path of a JSON file holding it (local mode and self-hosted servers).
 * Both set is a configuration error, as is a mapping that does not validate.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { NO_CUSTOM_TASKS, parseCustomTasks } from '../../core/dsl/custom-tasks';
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import { ConfigError } from '../../core/errors';

export { CUSTOM_TASKS_ENV } from './env-keys';
import { CUSTOM_TASKS_ENV } from './env-keys';

/** Parses the JSON text of a custom task mapping; `origin` names where it came from in error messages. */
export function customTasksFromJson(text: string, origin: string): CustomTasks {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${origin}: not JSON (${(error as Error).message})`]);
  }
  const result = parseCustomTasks(value);
  if (!result.ok) throw new ConfigError(result.problems.map((p) => `${origin}: ${p}`));
  return result.tasks;
}

/** Reads a custom task mapping from a JSON file. */
export function customTasksFromFile(path: string): CustomTasks {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([`custom tasks file ${path}: ${(error as Error).message}`]);
  }
  return customTasksFromJson(text, `custom tasks file ${path}`);
}

/** The custom tasks the environment configures (none when neither variable is set). */
export function loadCustomTasks(env: Readonly<Record<string, string | undefined>>): CustomTasks {
  const json = env[CUSTOM_TASKS_ENV.json];
  const file = env[CUSTOM_TASKS_ENV.file];
  if (json && file) throw new ConfigError([`set ${CUSTOM_TASKS_ENV.json} or ${CUSTOM_TASKS_ENV.file}, not both`]);
  if (json) return customTasksFromJson(json, CUSTOM_TASKS_ENV.json);
  if (file) return customTasksFromFile(file);
  return NO_CUSTOM_TASKS;
}

/** Where the configuration schemas find the pair of variables (parseWithCustomTasks puts them there). */
export const CUSTOM_TASKS_FIELD = 'custom tasks';

/**
 * The custom tasks as a configuration fragment: one field holding both variables, so that a bad mapping (or both
 * variables set) is reported with every other problem of the configuration.
 */
export const customTasksShape = {
  [CUSTOM_TASKS_FIELD]: z
    .object({ json: z.string().optional(), file: z.string().optional() })
    .transform((pair, ctx): CustomTasks => {
      try {
        return loadCustomTasks({ [CUSTOM_TASKS_ENV.json]: pair.json, [CUSTOM_TASKS_ENV.file]: pair.file });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const problem of error.problems) ctx.addIssue({ code: 'custom', message: problem });
        return NO_CUSTOM_TASKS;
      }
    }),
};

/** The environment with the custom tasks' two variables gathered into the fragment's field. */
export const withCustomTasksField = (env: Readonly<Record<string, string | undefined>>) => ({
  ...env,
  [CUSTOM_TASKS_FIELD]: { json: env[CUSTOM_TASKS_ENV.json], file: env[CUSTOM_TASKS_ENV.file] },
});
