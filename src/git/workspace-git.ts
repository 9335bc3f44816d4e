/**
 * git, run for a workspace: in its directory, on the repository's objects and the workspace's own index
 * file, with settings that make what git finds depend on the repository alone (so that the CLI method
 * matches the in-process one whatever the user's or the repository's configuration).
 */
import { devNull } from 'node:os';
import { runGitSequence as runGitSteps, type GitStep } from './git-cli.js';
import type { Workspace } from './workspace-types.js';

/** Settings that make a capture depend on the repository alone and match the in-process method. */
const HERMETIC_CONFIG = [
  'core.excludesFile=' + devNull,
  'core.autocrlf=false',
  'core.fileMode=true',
  'core.symlinks=true',
  'core.splitIndex=false',
  // What a capture finds must not depend on the repository's config: git compares every stat field it
  // records (ctime included: a worker cannot set it), assumes nothing unchanged, caches no directory
  // listings and checks out every path.
  'core.trustctime=true',
  'core.checkStat=default',
  'core.ignoreStat=false',
  'core.untrackedCache=false',
  'core.sparseCheckout=false',
  // The objects a capture writes are named by a ref soon after: git syncs them (in one batch per command)
  // before it exits, as the in-process store does before a ref moves (src/git/loose-objects.ts).
  'core.fsync=loose-object',
  'core.fsyncMethod=batch',
];

export function runGit(ws: Workspace, args: string[]): Promise<string> {
  return runGitSequence(ws, [args]);
}

/** Runs git steps in the workspace directory, on the repository's objects and the workspace's private index. */
export function runGitSequence(ws: Workspace, steps: GitStep[], env: Record<string, string> = {}): Promise<string> {
  return runGitSteps(steps, {
    gitDir: ws.store.gitdir,
    workTree: ws.dir,
    cwd: ws.dir,
    config: HERMETIC_CONFIG,
    env: { ...env, GIT_INDEX_FILE: ws.indexFile },
    // Two sequences per item: forked from a long-lived shell, not from Node (git-shell.ts).
    persistentShell: true,
  });
}

/** Where the entries an index file lacks are written for `update-index --index-info` (workspace-move.ts): beside it. */
export function catchUpFile(indexFile: string): string {
  return `${indexFile}.move`;
}

/** The entries of a NUL-terminated list (`-z` output). */
export function splitNulList(text: string): string[] {
  return text.split('\0').filter((entry) => entry !== '');
}
