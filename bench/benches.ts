/**
 * Every benchmark `npm run bench` runs, in the order it runs them (cheap and in-process first, then
 * the ones that start repositories, the simulator, containers and a browser). `run-plan.ts` and
 * `lib.ts` are plumbing, not benchmarks. `test/package/benches.test.ts` holds this list to the files
 * in `bench/`, so a new benchmark cannot be left out of `npm run bench`.
 */
export const BENCHES = [
  'reconcile.ts',
  'matrix.ts',
  'agora-test.ts',
  'agent-turns.ts',
  'local-fanout.ts',
  'run-growth.ts',
  'workspace-scale.ts',
  'git-workspace.ts',
  'audit.ts',
  'report.ts',
  'sim.ts',
  'github.ts',
  'github-growth.ts',
  'actions-sim.ts',
  'actions-target.ts',
  'docker/overhead.ts',
] as const;

/** Files in `bench/` that other benchmarks import and that are not benchmarks themselves. */
export const BENCH_PLUMBING = ['benches.ts', 'lib.ts', 'run-plan.ts', 'run.ts'] as const;
