/**
 * The layering of docs/architecture.md, checked by dependency-cruiser as part of `npm test`
 * (`npm run lint:layers`). A rule broken names the two modules; the fix is to move the code to the
 * layer it belongs to, not to add an exception here.
 */
const CORE = '^src/(plan|engine|problems)/';

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle makes load order matter and hides which layer owns what.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'core-imports-only-core',
      severity: 'error',
      comment:
        'src/plan, src/engine and src/problems import none of our modules outside the core but src/json and the error types (pure libraries such as zod are fine).',
      from: { path: CORE },
      to: { path: '^src/', pathNot: ['^src/(plan|engine|problems|json)/', '^src/(errors|error-codes)\\.ts$'] },
    },
    {
      name: 'core-has-no-io',
      severity: 'error',
      comment: 'The core has no I/O and no clock: no Node built-in at all.',
      from: { path: CORE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'runs-never-import-audit',
      severity: 'error',
      comment: 'src/audit reads runs through src/runs, never the reverse.',
      from: { path: '^src/runs/' },
      to: { path: '^src/audit/' },
    },
    {
      name: 'adapters-never-import-entry-points',
      severity: 'error',
      comment: 'The CLI, the Action and the App wire the adapters; no adapter reaches back into them.',
      from: { path: '^src/(json|log|git|executors|agents|runs|audit|report|config|problems|plan|engine|testing|init)/' },
      to: { path: '^src/(cli|action|github|demo)/' },
    },
    {
      name: 'src-never-imports-tests',
      severity: 'error',
      comment: 'What ships never loads test code: not test/ or bench/, nor the GitHub simulator (packages/github-sim, imported by tests as @agora/github-sim).',
      from: { path: '^src/' },
      to: { path: ['^(test|bench|packages)/', '(^|/)node_modules/@agora/github-sim/'] },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'] },
  },
};
