/**
 * What git does not list in a workspace, which a re-target or a capture must deal with itself: a `.git`
 * a worker planted (git takes it for a repository of its own, and `clean` never removes it), what is in
 * a submodule's directory (git never looks inside), and repositories a worker made (`git add` would
 * record them as gitlinks).
 */
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathInside } from '../path-inside.js';
import { runGit, splitNulList } from './workspace-git.js';
import type { TreeLayout, Workspace } from './workspace-types.js';
import { hasDirectory } from './workspace-stamps.js';

/**
 * `git clean` never removes a `.git` (a directory, a gitfile or a symlink), at the root or in any tracked
 * directory: git takes it for a repository of its own. A worker that planted one (`.git/config` with
 * `core.fsmonitor`, hooks) would hand it to the next worker's `git status`. A fresh checkout has none (git
 * refuses `.git` paths in trees), so every one goes. After clean every directory left is the root or one
 * of the target's trees (untracked directories went whole), so looking for `<dir>/.git` in each finds
 * them all without reading any directory (a `find` over the workspace cost twice as much CPU on a
 * 10,000-directory tree); on a case-insensitive file system the look also finds `.GIT`, which git would
 * use there too. A look is one `lstat`, done synchronously (far cheaper than a thread-pool round trip
 * each); `rm` does not follow a symlink it removes.
 */
export function removeEveryDotGit(ws: Workspace, layout: TreeLayout): void {
  if (!layout.exact) {
    removeDotGitByWalk(ws.dir);
    return;
  }
  for (const dir of ['', ...layout.dirs]) removeDotGitAt(ws, dir);
}

/** Looks for a `.git` in those of `dirs` that are directories of `layout` ('' for the root). */
export function removeDotGitIn(ws: Workspace, dirs: readonly string[], layout: TreeLayout): void {
  for (const dir of dirs) if (dir === '' || hasDirectory(layout, dir)) removeDotGitAt(ws, dir);
}

function removeDotGitAt(ws: Workspace, dir: string): void {
  const path = dir === '' ? join(ws.dir, '.git') : join(pathInside(ws.dir, dir, 'tree path'), '.git');
  if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) rmSync(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Where the target's directory names cannot all be looked up (one is not UTF-8): every directory is
 * read, by its bytes, and each `.git` (any case) in it goes. Links are not followed.
 */
function removeDotGitByWalk(root: string): void {
  const pending: Buffer[] = [Buffer.from(root)];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const entry of readdirSync(dir, { encoding: 'buffer', withFileTypes: true })) {
      const path = Buffer.concat([dir, Buffer.from('/'), entry.name]);
      if (entry.name.toString('latin1').toLowerCase() === '.git') rmSync(path, { recursive: true, force: true, maxRetries: 3 });
      else if (entry.isDirectory()) pending.push(path);
    }
  }
}

/**
 * git does not look inside a submodule's directory (clean leaves whatever a worker put there); a fresh
 * checkout has it empty, so it is emptied (or made a directory again).
 */
export async function emptySubmoduleDirectories(ws: Workspace, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const dir = pathInside(ws.dir, path, 'submodule path');
    const info = await lstat(dir).catch(() => null);
    if (!info?.isDirectory()) {
      if (info) await rm(dir, { force: true });
      await mkdir(dir, { recursive: true });
      continue;
    }
    for (const child of await readdir(dir)) await rm(join(dir, child), { recursive: true, force: true, maxRetries: 3 });
  }
}

/** What `.git` of a nested repository is renamed to while `git add` runs (and excluded by that name). */
const HIDDEN_GIT = '.agora-nested-git';

/**
 * A worker may create repositories inside its workspace (`cargo new`, `git init`). `git add` would record
 * them as gitlinks to commits that vanish with the workspace (or fail when they have no commit yet), so
 * their `.git` is set aside while `git add` runs: their files are captured as ordinary files, as the
 * in-process method does. Returns what to put back and an excludes file naming the set-aside entries.
 */
export async function hideNestedRepositories(ws: Workspace): Promise<{ moved: Array<{ from: string; to: string }>; excludesFile: string }> {
  const excludesFile = `${ws.indexFile}.exclude`;
  await writeFile(excludesFile, `${HIDDEN_GIT}\n`);
  const moved: Array<{ from: string; to: string }> = [];
  try {
    for (let round = 0; round < 16; round++) {
      // Untracked, not ignored paths; git lists a nested repository as `dir/` instead of its files.
      const listed = await runGit(ws, ['-c', `core.excludesFile=${excludesFile}`, 'ls-files', '-z', '--others', '--exclude-standard']);
      const nested: string[] = [];
      for (const path of splitNulList(listed)) {
        if (path.endsWith('/') && (await lstat(join(ws.dir, path, '.git')).catch(() => null))) nested.push(path);
      }
      if (nested.length === 0) break;
      for (const path of nested) {
        const from = join(ws.dir, path, '.git');
        const to = join(ws.dir, path, HIDDEN_GIT);
        await rename(from, to);
        moved.push({ from, to });
      }
    }
  } catch (e) {
    await restoreNestedRepositories({ moved, excludesFile });
    throw e;
  }
  return { moved, excludesFile };
}

export async function restoreNestedRepositories(hidden: { moved: Array<{ from: string; to: string }>; excludesFile: string }): Promise<void> {
  for (const { from, to } of [...hidden.moved].reverse()) await rename(to, from).catch(() => undefined);
  await rm(hidden.excludesFile, { force: true });
}
