import { USER, type ErrorCodeInfo } from './info.js';

/** The GitHub App and the GitHub Action. */
export const GITHUB_ERRORS = {
  // The GitHub App
  'app-env-missing': {
    area: 'github',
    exitCode: USER,
    meaning: '`agora app` lacks APP_ID, PRIVATE_KEY or WEBHOOK_SECRET.',
    fix: 'Register the App from app.yml and set them (docs/github-app.md).',
  },
  'app-key-unreadable': {
    area: 'github',
    exitCode: USER,
    meaning: "The App's private key file cannot be read.",
    fix: 'Point PRIVATE_KEY_PATH at the .pem from the App settings.',
  },
  'cache-dir-in-use': {
    area: 'github',
    exitCode: USER,
    meaning: "Another `agora app` process holds the App's cache dir (AGORA_CACHE_DIR): its mirrors and workspaces are there.",
    fix: 'Give each App process its own AGORA_CACHE_DIR; delete the claim file the message names only if its process is gone.',
  },
  'release-refused': {
    area: 'github',
    exitCode: USER,
    meaning: "GitHub refused to write a run's release.",
    fix: 'Fix what GitHub names; the bundle stays anchored and can be published by hand.',
  },

  // The GitHub Action
  'action-input': {
    area: 'action',
    exitCode: USER,
    meaning: 'An input of the Agora Action is missing or wrong.',
    fix: 'Fix the `with:` input the message names (docs/actions.md).',
  },
  'action-event': {
    area: 'action',
    exitCode: USER,
    meaning: 'The Action runs outside a job, or on an event it cannot use.',
    fix: 'Run it as a step of a pull_request workflow.',
  },
  'action-dispatch-mismatch': {
    area: 'action',
    exitCode: USER,
    meaning:
      "A worker job (`mode: worker`) was dispatched a job (command, environment, secret names, stdin or container options) that is not the one the App builds from the item in the run's state, or not the one the App recorded for the attempt at `refs/agora/dispatches/<run>/<item>/<attempt>`: the dispatch was not the App's, or was changed. Nothing was run.",
    fix: 'Let only the App dispatch the worker workflow: find who dispatched the workflow run, and review who holds `actions: write` on the repository (docs/actions.md).',
  },
  'action-container-refused': {
    area: 'action',
    exitCode: USER,
    meaning:
      "A worker job was dispatched container options an item on the actions target never gets: a network other than `none` or `bridge` (the runner's host network, another container's), or a user that is root or not numeric. Nothing was run.",
    fix: "Let only the App dispatch the worker workflow; in the App's config, give a subagent on the actions target `docker.network` none or bridge and a numeric non-root `docker.user`.",
  },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
