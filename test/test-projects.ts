/**
 * Which vitest project each test file belongs to (vitest.config.ts; test/unit/architecture/test-projects.test.ts
 * checks the lists against the files):
 * - `unit`: no database, no child process, no browser; the inner loop (`npm run test:fast`, seconds);
 * - `slow`: end-to-end runs, child processes (the CLI, agents, commands), the browser, the CDK synth;
 * - `db`: everything else, the database-backed tests (a file in neither list lands here, so none is ever left out).
 * An entry ending in `/` is a folder (every test file under it).
 */
export const UNIT_TESTS = [
  'test/unit/',
  'test/agent/idle-exit.test.ts',
  'test/agent/output-buffer.test.ts',
  'test/agent/report-batcher.test.ts',
  'test/aws/cloudwatch-log-sink.test.ts',
  'test/aws/data-api-url.test.ts',
  'test/aws/ec2-fleet.test.ts',
  'test/aws/instance-metadata.test.ts',
  'test/aws/lambda-nudger.test.ts',
  'test/aws/ssm-parameters.test.ts',
  'test/cli/definition-file.test.ts',
  'test/cli/ops-args.test.ts',
  'test/console/console-units.test.ts',
  'test/db/dialect-values.test.ts',
  'test/functions/console-binding.test.ts',
  'test/functions/lambda-sleep.test.ts',
  'test/functions/lazy-retrying.test.ts',
  'test/security/oidc-email-verified.test.ts',
  'test/security/private-files.test.ts',
];

export const SLOW_TESTS = [
  'test/e2e/',
  'infra-tests/',
  'test/agent/agent-bundle.test.ts',
  'test/agent/agent-process.test.ts',
  'test/agent/agent.test.ts',
  'test/agent/finished-while-dead.test.ts',
  'test/agent/leftovers.test.ts',
  'test/agent/memory-sampler.test.ts',
  'test/agent/process-runner-log-sink.test.ts',
  'test/agent/process-runner.test.ts',
  'test/agent/spawner.test.ts',
  'test/agent/start-gate.test.ts',
  'test/api/openapi-lint.test.ts',
  'test/chaos/process-restart.test.ts',
  'test/cli/doctor-command.test.ts',
  'test/cli/operator-cli.test.ts',
  'test/cli/startup-failures.test.ts',
  'test/cli/validate-command.test.ts',
  'test/console/console-browser.test.ts',
  'test/console/console-oidc.test.ts',
  'test/db/dialect.test.ts',
  'test/import/import-command.test.ts',
  'test/security/agent-run-as.test.ts',
];

/** Where test files live. */
export const ALL_TESTS = ['test/', 'infra-tests/'];

/** The entries as vitest globs. */
export const globs = (entries: readonly string[]): string[] => entries.map((entry) => (entry.endsWith('/') ? `${entry}**/*.test.ts` : entry));
