import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: the suite spawns git, workers and containers; more forks only thrash.
    pool: 'forks',
    maxWorkers: 2,
  },
});
