import { defineConfig } from 'vitest/config';
import { shared } from './vitest.config';

/** `npm run test:slow`: the slow suites (see vitest.config.ts). CI runs them after `npm test`. */
export default defineConfig({
  test: {
    ...shared,
    include: ['test/**/*.slow.test.ts', 'src/**/*.slow.test.ts', 'auth/**/*.slow.test.ts', 'tenants/**/*.slow.test.ts'],
  },
});
