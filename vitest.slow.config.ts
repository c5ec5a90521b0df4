import { defineConfig } from 'vitest/config';
import { SLOW, shared } from './vitest.config';

/** `npm run test:slow`: the slow suites (see vitest.config.ts). CI runs them after `npm test`. */
export default defineConfig({
  test: {
    ...shared,
    include: [SLOW],
  },
});
