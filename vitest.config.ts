import { defineConfig } from 'vitest/config';

// Two cores: two test files at a time. Every database-backed test file creates its own database.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'infra-tests/**/*.test.ts'],
    // Node 20 is this machine's runtime; the SDK's notice about future versions is noise in every test log.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
