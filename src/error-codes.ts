/**
 * Every code an {@link AgoraError} can carry, with what it means, what a user does about it and the
 * exit code the CLI ends with. This table is the one list: `AgoraError`'s constructor accepts only its
 * keys, and `docs/errors.md` is generated from it (`npm run docs:errors`; a test fails when the file is
 * stale).
 */
export interface ErrorCodeInfo {
  /** What went wrong, in one sentence. */
  readonly meaning: string;
  /** What the user does about it, in general; each error's own hint says it for the case at hand. */
  readonly fix: string;
  /** The CLI's exit status when this error ends a command. */
  readonly exitCode: number;
  /** Where it comes from, for the generated table. */
  readonly area: ErrorArea;
}

export type ErrorArea = 'plan' | 'config' | 'run' | 'git' | 'worker' | 'audit' | 'cli' | 'github' | 'action';

export const ERROR_AREAS: Readonly<Record<ErrorArea, string>> = {
  plan: 'Plans',
  config: 'Configuration and secrets',
  run: 'Runs',
  git: 'The repository',
  worker: 'Workers and workspaces',
  audit: 'Audit, signing and verification',
  cli: 'Command-line options',
  github: 'The GitHub App',
  action: 'The GitHub Action',
};

const USER = 1;
/** Bad command-line usage (docs/cli.md): an option value that cannot be read, options that do not go together; as commander's own refusals. */
const USAGE = 2;

export const ERROR_CODES = {
  // Plans
  'plan-not-found': { area: 'plan', exitCode: USER, meaning: 'The plan file cannot be read.', fix: 'Pass the path of an existing plan.json.' },
  'plan-not-json': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan is not valid JSON; the message gives the line and column.',
    fix: 'Fix the JSON syntax at the place shown.',
  },
  'plan-duplicate-key': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan repeats a key in one object, which JSON parsers resolve differently.',
    fix: 'Keep one of the two keys.',
  },
  'plan-too-large': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan is larger than 5 MiB.',
    fix: 'Split the work into smaller plans, or move large inputs into files in the repository.',
  },
  'matrix-file-no-commit': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan reads a matrix file, but there is no commit to read it at (not a git repository, or no commits yet).',
    fix: 'Commit the plan and its matrix files in a git repository; a run reads them at its base commit.',
  },
  'plan-too-deep': {
    area: 'plan',
    exitCode: USER,
    meaning: 'A value in the plan nests objects and arrays deeper than the limit.',
    fix: 'Flatten the value, or keep the data in a file and pass its path.',
  },
  'plan-invalid': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan breaks one or more rules; each problem is listed with its JSON path.',
    fix: 'Fix each problem at its path (docs/plan.md describes every field).',
  },
  'plan-cyclic': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The items depend on one another in a cycle.',
    fix: 'Remove one dependency of the cycle the message shows.',
  },
  'plan-rejected': {
    area: 'plan',
    exitCode: USER,
    meaning: 'A submitted plan was rejected by the server that took it from the inbox.',
    fix: 'Fix the listed problems and submit the plan again.',
  },
  'executor-unknown': { area: 'plan', exitCode: USER, meaning: 'An item names an executor that does not exist.', fix: 'Use "command" or "dispatch".' },
  'subagent-unknown': {
    area: 'plan',
    exitCode: USER,
    meaning: 'An item dispatches to a subagent the config does not define.',
    fix: 'Use a subagent defined under orch.subagents, or define it.',
  },
  'inputs-invalid': { area: 'plan', exitCode: USER, meaning: "An item's inputs do not fit what its executor takes.", fix: 'Fix the named input in plan.json.' },
  'image-missing': {
    area: 'plan',
    exitCode: USER,
    meaning: 'An item runs on the docker target but no image is named.',
    fix: 'Set inputs.image on the item or commandImage in the config.',
  },

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

  // Runs
  'run-id-invalid': {
    area: 'cli',
    exitCode: USER,
    meaning: 'A `<run>` argument is not a run id as Agora makes them, so no run can have it.',
    fix: 'Pass a run id as `agora orch status` lists them: `<plan id>-<n>`.',
  },
  'run-not-found': { area: 'run', exitCode: USER, meaning: 'No run with that id exists in the repository.', fix: 'List runs with `agora orch status`.' },
  'run-not-accepted': {
    area: 'run',
    exitCode: USER,
    meaning: 'The run is submitted but no `agora orch serve` has accepted it yet, so it has no state, logs or audit.',
    fix: 'Start `agora orch serve` in the repository (or wait for the one running), then ask again.',
  },
  'run-not-terminal': {
    area: 'run',
    exitCode: USER,
    meaning: 'The command needs a finished run and this one is still going.',
    fix: 'Wait for the run to end (`agora orch watch`).',
  },
  'item-not-found': { area: 'run', exitCode: USER, meaning: 'The run has no item with that id.', fix: 'Use one of the item ids the hint lists.' },
  'retry-refused': {
    area: 'run',
    exitCode: USER,
    meaning: 'Only a failed or cancelled item of a run that was not cancelled can be retried.',
    fix: 'Retry a failed item, or submit the plan again.',
  },
  'nothing-to-retry': {
    area: 'run',
    exitCode: USER,
    meaning: '`agora orch retry --failed` found no failed item in the run (or the run was cancelled as a whole).',
    fix: 'Check the run with `agora orch status`; retry a cancelled item by its id, or submit the plan again.',
  },
  'no-logs': {
    area: 'run',
    exitCode: USER,
    meaning: 'No log is kept for that item or attempt.',
    fix: 'Wait for the item to run, or pick an attempt that exists.',
  },
  'base-not-found': {
    area: 'run',
    exitCode: USER,
    meaning: 'The base a run should start from is not a commit of the repository.',
    fix: 'Pass a branch, tag or full commit id, or commit something first.',
  },
  'apply-refused': {
    area: 'run',
    exitCode: USER,
    meaning: "A run's result is applied only when every item is done, in a work tree whose branch has not moved since the run started.",
    fix: 'Apply a finished run in a work tree, or merge its integration ref yourself.',
  },
  'apply-failed': {
    area: 'run',
    exitCode: USER,
    meaning: "Fast-forwarding the branch to the run's result failed.",
    fix: 'Commit or stash local changes, then retry.',
  },
  interrupted: {
    area: 'run',
    exitCode: 130,
    meaning: 'The command was interrupted (SIGINT or SIGTERM); the run stays resumable.',
    fix: 'Resume it with `agora orch serve`.',
  },
  'serve-running': {
    area: 'run',
    exitCode: USER,
    meaning: 'Another `agora orch serve` already serves this repository.',
    fix: 'Stop it, or hand it work with `agora orch submit`.',
  },
  contended: {
    area: 'run',
    exitCode: USER,
    meaning: 'A compare-and-swap kept losing to other writers, so the change was not made.',
    fix: 'Run the command again; if it keeps happening, find what writes the named ref so often.',
  },
  'state-corrupt': {
    area: 'run',
    exitCode: USER,
    meaning: "A run's state commit is not one Agora wrote (files missing or extra, an item twice or under another name).",
    fix: "Restore the run's ref from a clone, or remove the run; `agora verify --repo` shows what differs.",
  },
  'claims-corrupt': {
    area: 'run',
    exitCode: USER,
    meaning:
      'The claims ref (`refs/agora/claims`) holds a document Agora did not write: not its JSON, or an entry whose run id, item id, lock key, queue or counter breaks its rule.',
    fix: 'Stop every `agora orch serve` and App replica of the repository, delete the ref the message names (`git update-ref -d`), and start them again: running items are claimed afresh.',
  },
  'state-layout': { area: 'run', exitCode: USER, meaning: "A run's state uses a repository layout newer than this Agora reads.", fix: 'Upgrade Agora.' },
  'work-dir-in-repository': {
    area: 'run',
    exitCode: USER,
    meaning: 'The work dir for workspaces lies inside a git repository.',
    fix: 'Set AGORA_WORK_DIR (or TMPDIR) outside any repository.',
  },
  'work-dir-unsafe': {
    area: 'run',
    exitCode: USER,
    meaning: 'The work dir is not a private directory of this user.',
    fix: 'Remove it, or set AGORA_WORK_DIR to a directory only this user can enter.',
  },
  'replay-invalid': {
    area: 'run',
    exitCode: USER,
    meaning: "A run's integration head does not descend from its base.",
    fix: "Pass the run's plan commit as base and its integration commit as head.",
  },
  'gc-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora orch gc` was given options that do not fit together or cannot be read.',
    fix: 'Fix the option the message names (docs/cli.md, gc).',
  },
  'gc-remote': {
    area: 'run',
    exitCode: USER,
    meaning: '`gc --remote` cannot read or reach the remote repository.',
    fix: 'Pass an https URL or a remote name, and a token in GITHUB_TOKEN.',
  },
  'gc-remote-moved': {
    area: 'run',
    exitCode: USER,
    meaning: 'A ref on the remote moved while gc worked, so the remote refused the whole prune.',
    fix: 'Run gc again.',
  },
  'gc-remote-refused': {
    area: 'run',
    exitCode: USER,
    meaning: 'The remote refused the prune for a reason other than a moved ref.',
    fix: 'Use a token that may delete refs/agora/*, or lift the rule that blocks it.',
  },

  // The repository
  'repo-not-found': { area: 'git', exitCode: USER, meaning: 'The path is not a git repository.', fix: 'Pass --repo with a git repository, or run `git init`.' },
  'repo-not-owned': {
    area: 'git',
    exitCode: USER,
    meaning: 'The repository found above the working directory belongs to another user (git: dubious ownership).',
    fix: 'Name it with --repo if you trust it, or work in your own repository.',
  },
  'repo-unsupported': {
    area: 'git',
    exitCode: USER,
    meaning: 'The repository is of a kind Agora cannot use: SHA-256 ids, reftable refs, or a `.git` file (a linked worktree or submodule).',
    fix: 'Use a SHA-1 repository with the files ref backend, opened at its main work tree.',
  },
  'ref-invalid': { area: 'git', exitCode: USER, meaning: 'A ref name is not valid.', fix: 'Use a full ref name such as refs/agora/runs/<run>.' },
  'ref-symbolic': {
    area: 'git',
    exitCode: USER,
    meaning: 'Agora updates only direct refs and this one is symbolic.',
    fix: 'Update the ref it points to instead.',
  },
  'ref-corrupt': {
    area: 'git',
    exitCode: USER,
    meaning: 'A ref file is unreadable, or a chain of symbolic refs is too long.',
    fix: 'Repair or remove the ref file the message names.',
  },
  'ref-conflict': {
    area: 'git',
    exitCode: USER,
    meaning: 'A ref would nest inside another ref that exists.',
    fix: 'Choose a ref name that is not a prefix of another.',
  },
  'ref-locked': {
    area: 'git',
    exitCode: USER,
    meaning: 'A ref is locked by another process, or by one that died.',
    fix: 'Wait, or remove the stale lock file the message names.',
  },
  'oid-invalid': { area: 'git', exitCode: USER, meaning: 'A value that must be an object id is not 40 hexadecimal characters.', fix: 'Pass a full object id.' },
  'object-not-found': {
    area: 'git',
    exitCode: USER,
    meaning: 'An object the command needs is not in the repository.',
    fix: 'Fetch the missing objects, or check the id.',
  },
  'object-type': {
    area: 'git',
    exitCode: USER,
    meaning: 'An object has another type than expected (a blob where a tree was needed, …).',
    fix: 'Check the id passed.',
  },
  'object-corrupt': {
    area: 'git',
    exitCode: USER,
    meaning: 'A loose object file is empty or does not hold its object.',
    fix: 'Restore the object from a clone; `git fsck` lists what is broken.',
  },
  'object-unreadable': { area: 'git', exitCode: USER, meaning: "An object's size cannot be read.", fix: 'Run `git fsck`; a fresh clone or fetch restores it.' },
  'tree-invalid': {
    area: 'git',
    exitCode: USER,
    meaning: 'A tree written or read has a bad entry (duplicate or unsafe name, bad id or mode).',
    fix: 'Give each entry a distinct valid name, id and mode.',
  },
  'tree-edit-invalid': {
    area: 'git',
    exitCode: USER,
    meaning: 'A change set to a tree names a path twice, or as both file and directory.',
    fix: 'Pass each path once, as a file.',
  },
  'commit-invalid': {
    area: 'git',
    exitCode: USER,
    meaning: 'A commit to be written names a tree or parent that is not an object id.',
    fix: 'Pass full object ids.',
  },
  'git-failed': { area: 'git', exitCode: USER, meaning: 'A git command Agora ran failed; its stderr is in the message.', fix: 'Act on what git said.' },
  'disk-full': {
    area: 'git',
    exitCode: USER,
    meaning: 'The disk filled while writing; nothing half-written is used.',
    fix: 'Free space and run the command again.',
  },
  'push-refused': {
    area: 'git',
    exitCode: USER,
    meaning: 'GitHub refused a push of Agora state.',
    fix: 'Allow the App to push refs/agora/* (rulesets, branch protection).',
  },
  'path-outside-directory': {
    area: 'git',
    exitCode: USER,
    meaning: 'A name that becomes a file name would resolve outside its directory.',
    fix: 'Use an id-like name: one path component, no "..".',
  },

  // Workers and workspaces
  'workspace-in-repository': {
    area: 'worker',
    exitCode: USER,
    meaning: 'A workspace directory lies inside the repository.',
    fix: 'Materialise workspaces outside the repository.',
  },
  'workspace-not-empty': {
    area: 'worker',
    exitCode: USER,
    meaning: 'A new workspace directory is not empty.',
    fix: 'Choose a new directory or remove this one first.',
  },

  // Audit
  'audit-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: "The run's audit is not intact.",
    fix: 'Read report.failures in the bundle: each names what broke.',
  },
  'retry-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora orch retry` needs either one item id or `--failed`, not both and not neither.',
    fix: 'Name the item to retry, or pass --failed to retry every failed item.',
  },
  'audit-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora orch audit` was given options that do not fit together.',
    fix: 'Fix the option the message names.',
  },
  'anchor-root-mismatch': {
    area: 'audit',
    exitCode: USER,
    meaning: "The root to anchor differs from the root of the run's log in the repository.",
    fix: 'Investigate: the log or the bundle changed.',
  },
  'anchor-conflict': {
    area: 'audit',
    exitCode: USER,
    meaning: "A run's anchor already holds another root; anchors are never rewritten.",
    fix: 'Investigate the repository: the log or the anchor was tampered with.',
  },
  'bundle-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The file is not a readable Agora audit bundle.',
    fix: 'Pass the file `agora orch audit <run> --out FILE` wrote.',
  },
  'bundle-unreadable': { area: 'audit', exitCode: USER, meaning: 'The audit bundle file cannot be read.', fix: 'Check the path.' },
  'bundle-duplicate-key': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The bundle repeats a key in one object: it was edited, since Agora never writes one.',
    fix: 'Use the bundle as Agora wrote it.',
  },
  'bundle-version': { area: 'audit', exitCode: USER, meaning: 'The bundle uses a newer format than this Agora understands.', fix: 'Upgrade Agora.' },
  'verify-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora verify` was given pins that do not fit together or pin nothing.',
    fix: 'Pass a complete signer pin (--key, or identity and issuer with --trusted-root).',
  },
  'verify-failed': { area: 'audit', exitCode: USER, meaning: 'Verification of a bundle failed; each FAIL line names what broke.', fix: 'Read the FAIL lines.' },
  'sigstore-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The Sigstore bundle file is not readable JSON.',
    fix: 'Pass the .sigstore.json written beside the audit bundle.',
  },
  'sigstore-unreadable': { area: 'audit', exitCode: USER, meaning: 'The Sigstore bundle file cannot be read.', fix: 'Check the path, or pass --sigstore.' },
  'trust-root-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The trusted root file is not a Sigstore trusted_root.json.',
    fix: 'Pass the trusted_root.json your Sigstore instance publishes.',
  },
  'trust-root-unreadable': { area: 'audit', exitCode: USER, meaning: 'The trusted root file cannot be read.', fix: 'Check the path.' },
  'sign-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Signing the audit statement failed.',
    fix: 'Check that the signing services named are reachable, and the identity token.',
  },
  'identity-token-missing': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Keyless signing needs an OIDC identity token and none was given.',
    fix: 'Pass --identity-token or set SIGSTORE_ID_TOKEN.',
  },
  'oidc-token-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The GitHub Actions OIDC token request failed.',
    fix: 'Grant `id-token: write` to the job, and check the endpoint answered.',
  },
  'signing-key-missing': {
    area: 'audit',
    exitCode: USER,
    meaning: 'No signing key is configured.',
    fix: 'Pass --key, set AGORA_SIGNING_KEY, or create a pair with `agora keys generate`.',
  },
  'key-unreadable': { area: 'audit', exitCode: USER, meaning: 'A key file cannot be read.', fix: 'Check the path.' },
  'key-invalid': { area: 'audit', exitCode: USER, meaning: 'A key is not an ECDSA P-256 key in PEM.', fix: 'Pass a key `agora keys generate` wrote.' },
  'key-exists': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Writing a key pair would overwrite an existing key.',
    fix: 'Move the old key away first, or write to another directory.',
  },
  'audit-out': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The audit bundle cannot be written where `--out` says (a directory, a device or pipe, or a place that cannot be written).',
    fix: 'Pass a file path you may write to; missing directories are created.',
  },
  'report-out': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The report cannot be written where `--out` says (a directory, a device or pipe, or a place that cannot be written).',
    fix: 'Pass a file path you may write to; missing directories are created.',
  },
  'bundle-dir': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The `--bundle-dir` of `agora orch gc` cannot be used: it is not a directory, lies under a file, or cannot be created.',
    fix: 'Pass a directory, or a path where one can be created.',
  },
  'key-dir': { area: 'cli', exitCode: USER, meaning: 'The directory for a new key pair cannot be used.', fix: 'Pass a directory you may write to.' },
  'image-context': {
    area: 'cli',
    exitCode: USER,
    meaning: '`npm run image:context` (building the worker image context) was given a bad argument, or a step failed.',
    fix: 'Fix the argument, or act on the failed step it names.',
  },

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

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
