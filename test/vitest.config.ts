import { defineProject } from 'vitest/config';
import { sourceConditions } from '../vitest.shared.js';

export default defineProject({
  ...sourceConditions,
  test: {
    name: 'system',
    include: ['**/*.test.ts'],
    // Whole guests boot here (several VEs at once): a guard against a hang, not a speed check.
    testTimeout: 60_000,
  },
});
