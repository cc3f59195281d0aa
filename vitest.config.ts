import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The AWS SDK warns on Node 20 that its 2027 releases need Node 22: true, and said in the
    // README; in test output it is only noise (child processes inherit this too).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // Secrets must never leak through a failing assertion's diff either.
    printConsoleTrace: false,
  },
});
