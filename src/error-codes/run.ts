import { USAGE, USER, type ErrorCodeInfo } from './info.js';

/** Runs: submitting, serving, cancelling, retrying and reading runs. */
export const RUN_ERRORS = {
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
  'anchor-archive-unreadable': {
    area: 'run',
    exitCode: USER,
    meaning:
      '`refs/agora/anchor-archive` does not hold the archive `agora orch gc` writes (someone pointed it at something else), so which run ids were pruned is unknown: no run id is given out or accepted until it is mended.',
    fix: 'Restore the ref to the archive commit gc wrote (`git reflog`, or a clone), or delete it with `git update-ref -d` if this repository never pruned a run.',
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
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
