import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['source'] },
  test: {
    name: 'system',
    include: ['**/*.test.ts'],
  },
});
