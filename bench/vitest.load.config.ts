// The load and fault tests (test/load/*.load.ts): `npx vitest run --config bench/vitest.load.config.ts`.
// Kept out of `npm test` because together they take a couple of minutes. Files run one at a time
// so they do not compete for the CPU; --expose-gc lets the memory test measure heap after GC.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/load/**/*.load.ts'],
    testTimeout: 240_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--expose-gc'],
    printConsoleTrace: false,
  },
});
