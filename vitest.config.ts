import { defineConfig } from 'vitest/config';

// One project per workspace, and one (`system`) for the cross-package tests in test/.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'services/*/vitest.config.ts', 'test/vitest.config.ts'],
    reporters: ['default', './vitest.summary.ts'],
  },
});
