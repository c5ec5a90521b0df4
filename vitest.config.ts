import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'auth/**/*.test.ts', 'tenants/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // Two cores: suites start servers and engine processes of their own, and mostly wait on them
    // (HTTP, cells, kills and restarts): three workers took the suite from 596 s to 444 s here,
    // under the 10-minute aim, with every test passing; two left it at the aim.
    maxWorkers: 3,
    minWorkers: 1,
    reporters: ['default'],
  },
});
