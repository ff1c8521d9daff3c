import { defineConfig } from 'vitest/config';
import { ALL_TESTS, SLOW_TESTS, UNIT_TESTS, globs } from './test/test-projects';

// What every project shares. Every database-backed test file creates its own databases (copies of the run's
// migrated templates, test/helpers/database-template.ts).
const shared = {
  // Node 20 is this machine's runtime; the SDK's notice about future versions is noise in every test log.
  env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  pool: 'forks',
  testTimeout: 30_000,
  hookTimeout: 60_000,
} as const;

// Three projects (test/test-projects.ts says which file is where): `npm run test:fast` runs `unit` alone.
export default defineConfig({
  test: {
    // Two cores: two test files at a time, across the projects.
    maxWorkers: 2,
    // Finds MySQL and migrates the templates once for the whole run (nothing of that for `unit` alone).
    globalSetup: ['test/helpers/global-setup.ts'],
    projects: [
      { test: { ...shared, name: 'unit', include: globs(UNIT_TESTS) } },
      { test: { ...shared, name: 'db', include: globs(ALL_TESTS), exclude: [...globs(UNIT_TESTS), ...globs(SLOW_TESTS)] } },
      { test: { ...shared, name: 'slow', include: globs(SLOW_TESTS) } },
    ],
  },
});
