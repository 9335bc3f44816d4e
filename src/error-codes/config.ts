import { USER, type ErrorCodeInfo } from './info.js';

/** Configuration: agora.config.mjs and secrets. */
export const CONFIG_ERRORS = {
  // Configuration
  'config-not-found': {
    area: 'config',
    exitCode: USER,
    meaning: 'The config module named does not exist or is not a file.',
    fix: 'Pass the path of agora.config.mjs, or leave --config out.',
  },
  'config-load-failed': {
    area: 'config',
    exitCode: USER,
    meaning: 'Importing the config module threw.',
    fix: 'Fix the error in the module; `node <file>` shows it in full.',
  },
  'config-not-owned': {
    area: 'config',
    exitCode: USER,
    meaning: 'The config found beside the plan or in the repository belongs to another user, so it is not run.',
    fix: 'Name it with --config if you trust it, or remove it.',
  },
  'config-invalid': {
    area: 'config',
    exitCode: USER,
    meaning: "The config's exported `orch` breaks one or more rules; each is listed with its path.",
    fix: 'Fix each problem (docs/config.md describes every field).',
  },
  'secret-missing': {
    area: 'config',
    exitCode: USER,
    meaning: 'An item needs a secret that is not set.',
    fix: "Export it in the environment of the serving process and, for a plan's command item, list it in orch.secrets of agora.config.mjs (the App: AGORA_SECRETS_FILE).",
  },
  'secret-reserved': {
    area: 'config',
    exitCode: USER,
    meaning: "An item declares as a secret an agent's API key, which only the orchestrator's loop holds.",
    fix: "Remove it from the item's inputs.secrets (or the subagent's secrets); an agent gets its key through its loop.",
  },
  'secret-too-short': {
    area: 'config',
    exitCode: USER,
    meaning: 'A secret is too short to be redacted from logs reliably.',
    fix: 'Give it a real value of at least the minimum length, or stop declaring it a secret.',
  },
  'invalid-environment': {
    area: 'config',
    exitCode: USER,
    meaning: 'An environment variable (or the file it names) holds a value Agora cannot use.',
    fix: 'Set the named variable as the message describes.',
  },
  'docker-unavailable': {
    area: 'config',
    exitCode: USER,
    meaning: 'The docker target cannot be set up (its client or configuration failed).',
    fix: 'Set DOCKER_HOST to a reachable engine, or run items on the local target.',
  },
  'git-cli-missing': { area: 'config', exitCode: USER, meaning: 'The git command is needed and is not installed.', fix: 'Install git.' },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
