import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.js';

export default defineProject({
  ...sourceConditions,
  test: {
    name: 'anc',
    include: ['test/**/*.test.ts'],
    // Tests start real servers: a guard against a hang only.
    testTimeout: 30_000,
  },
});
