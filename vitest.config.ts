import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'auth/**/*.test.ts', 'tenants/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // Two cores: suites start servers and engine processes of their own.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
