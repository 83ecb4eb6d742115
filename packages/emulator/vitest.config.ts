import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.js';

export default defineProject({
  ...sourceConditions,
  test: {
    name: 'emulator',
    include: ['test/**/*.test.ts'],
    // Guests run to completion in some tests (the VM manager's): a guard against a hang only.
    testTimeout: 30_000,
  },
});
