/**
 * The deploy config's `customTasks`: checked like KUROKO_CUSTOM_TASKS, kept small enough for the Lambda environment
 * (4 KB for all variables: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), and passed to
 * the two functions that parse scripts (the processor runs them; the API validates them and retries and skips).
 */
import { describe, expect, it } from 'vitest';
import { CUSTOM_TASKS_MAX_BYTES, parseDeployConfig } from '../cdk/deploy-config';
import { ConfigError } from '../core/errors';
import { CUSTOM_TASKS_ENV } from '../app/config/custom-tasks-config';
import { TEST_EMAIL, logicalId, synthKuroko } from './helpers/synth-app';

const TASKS = { my_project_runner: 'cd /srv/app && bin/rails runner {{option}}' };

describe('deploy config: customTasks', () => {
  it('defaults to none and refuses what the runtime would refuse', () => {
    expect(parseDeployConfig({}).customTasks).toEqual({});
    expect(() => parseDeployConfig({ customTasks: { execute: 'x' } })).toThrow(ConfigError);
    expect(() => parseDeployConfig({ customTasks: { ok: ' ' } })).toThrow(/needs a command template/);
    expect(() => parseDeployConfig({ customTasks: { big: 'x'.repeat(CUSTOM_TASKS_MAX_BYTES) } })).toThrow(/fit in the Lambdas' environment/);
  });

  it('passes the mapping to the processor and the API only', () => {
    const built = synthKuroko({ alertEmail: TEST_EMAIL, customTasks: TASKS });
    const resources = (built.templates.engine.toJSON() as { Resources: Record<string, { Properties: { Environment?: { Variables: Record<string, unknown> } } }> }).Resources;
    const envOf = (name: string) => resources[logicalId(built.engine, built.engine.functions[name as keyof typeof built.engine.functions])]!.Properties.Environment!.Variables;
    for (const name of Object.keys(built.engine.functions)) {
      const value = envOf(name)[CUSTOM_TASKS_ENV.json];
      if (name === 'processor' || name === 'api') expect(JSON.parse(value as string), name).toEqual(TASKS);
      else expect(value, name).toBeUndefined();
    }
  });
});
