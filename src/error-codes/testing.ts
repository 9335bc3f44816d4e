import { USAGE, USER, type ErrorCodeInfo } from './info.js';

/** Plan tests (`agora test`) and project templates (`agora init`). */
export const TESTING_ERRORS = {
  // Plan tests (`agora test`) and project templates (`agora init`)
  'fixture-not-found': {
    area: 'plan',
    exitCode: USER,
    meaning: '`agora test` found no fixture to run, or cannot read the one named.',
    fix: 'Name tests/fixture-*.json files, or create one (docs/testing-plans.md).',
  },
  'fixture-invalid': {
    area: 'plan',
    exitCode: USER,
    meaning: 'A fixture is malformed or does not match its plan; each problem is listed with its JSON path.',
    fix: 'Fix each problem at its path in the fixture (docs/testing-plans.md describes every field).',
  },
  'call-unavailable': {
    area: 'cli',
    exitCode: USER,
    meaning:
      '`agora call` ran outside a worker whose subagent declares dependencies (no $AGORA_CALL_SOCKET), or its input is not JSON, or the orchestrator cannot be reached.',
    fix: 'Run it from the command of a subagent that lists the callee in its dependencies, on the local or docker target, with JSON input.',
  },
  'call-target': {
    area: 'config',
    exitCode: USER,
    meaning:
      'A command subagent that declares dependencies runs on a target that cannot hand its worker the call socket: the actions target (a runner has no channel back to the orchestrator yet), or a docker engine that is not on this host.',
    fix: 'Run the subagent on the local target or on a docker engine reached through a unix socket of this host, or make it an agent (its loop calls from the orchestrator).',
  },
  'call-refused': {
    area: 'cli',
    exitCode: USER,
    meaning:
      "The orchestrator refused the call (not a declared dependency, max_hops, too little time, budget spent, input not matching the schema, or past a limit of the attempt's call socket: connections, calls or request bytes at once) or the child attempt failed.",
    fix: 'Read the reason printed; declare the dependency, raise the limit, change the input, or wait for the calls already made to answer.',
  },
  'params-invalid': {
    area: 'cli',
    exitCode: USAGE,
    meaning:
      'A run parameter is malformed: a `--data`/`--secret-data` that is not `key=value`, a key that is not a safe name, a key given twice, or a secret value too short to redact.',
    fix: 'Pass each parameter once as `--data key=value`, with a key of letters, digits, `_`, `.`, `-` starting with a letter (docs/cli.md).',
  },
  'params-file-invalid': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The `--data-file` cannot be read, is not JSON, is not an object, or has a value that is not a string, number or boolean.',
    fix: 'Pass a JSON object whose values are strings, numbers or booleans, e.g. `{ "region": "eu", "shards": 4 }`.',
  },
  'init-refused': {
    area: 'cli',
    exitCode: USER,
    meaning: '`agora init` was given a directory that is not new or empty, or one that cannot be created (it lies under a file, say).',
    fix: 'Name a new or empty directory, or a path where one can be created.',
  },
  'template-unknown': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora init --template` names a template that does not exist.',
    fix: 'Name one of the templates listed (`agora init --help`).',
  },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
