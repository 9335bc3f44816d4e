import { USER, type ErrorCodeInfo } from './info.js';

/** The repository, and workers and workspaces. */
export const GIT_ERRORS = {
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
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
