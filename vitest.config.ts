import { defineConfig } from 'vitest/config';
import { measureMachineFactor } from './test/support/machine.js';

export default defineConfig(async () => {
  // Measured once per run: bounds in tests (eventually(), scaled()) and the per-test timeouts grow with it.
  const machineFactor = await measureMachineFactor();
  console.log(`agora tests: machine factor ${machineFactor} (waits and timeouts scaled by it; see docs/testing.md)`);
  return {
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: Math.ceil(60_000 * machineFactor),
      hookTimeout: Math.ceil(60_000 * machineFactor),
      provide: { machineFactor },
      setupFiles: ['test/support/setup-machine.ts'],
      // The CLI the tests start is dist/ (package.json's bin), built first when src/ is newer.
      globalSetup: ['test/support/built-cli.ts'],
      // Two cores: the suite spawns git, workers and containers; more forks only thrash.
      pool: 'forks' as const,
      maxWorkers: 2,
      // @actions/workflow-parser imports its JSON schema without `with { type: 'json' }`, which Node
      // refuses (actions/languageservices#387); inlined, vite's transform loads it.
      server: { deps: { inline: [/@actions\/workflow-parser/] } },
    },
  };
});
