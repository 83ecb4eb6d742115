import { defineConfig } from 'vitest/config';

// One project per workspace (and one for the cross-package tests in test/).
export default defineConfig({
  resolve: { conditions: ['source'] },
  test: {
    projects: ['packages/*/vitest.config.ts', 'test/vitest.config.ts'],
  },
});
