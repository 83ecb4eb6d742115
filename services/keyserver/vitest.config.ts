import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.js';

export default defineProject({
  ...sourceConditions,
  test: {
    name: 'keyserver',
    include: ['test/**/*.test.ts'],
    // Tests start real servers and child processes: a guard against a hang only.
    testTimeout: 30_000,
  },
});
