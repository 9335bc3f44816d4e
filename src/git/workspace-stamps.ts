/**
 * Agora's own record of a workspace's stat data, so that a capture finds what a worker touched without
 * git walking the whole workspace: one `lstat` of every directory and every tracked file, compared with
 * what was recorded when the workspace was last made exact; only directories whose stat data changed are
 * read for what is new in them, and only files whose stat data changed go to git.
 *
 * Why this is exact against a worker that restores its files' times and sizes: it cannot set their
 * inode change time (ctime). Any change to a file (content, mode, owner, a hard link) or to a directory's
 * entries (a file created, removed or renamed in it) sets the ctime to the clock's time then. After the
 * stamps are taken, a marker file is written beside the workspace, on the same file system; the worker
 * starts after that. A stamp whose ctime is before the marker's cannot equal the ctime of any change the
 * worker makes; a stamp whose ctime is not before it (the same clock tick) is "racy", and its path is
 * treated as changed. A stamp that is stale (its path changed since, by Agora's own hand) only makes a
 * path be checked that need not be: stamps are never trusted to be fresher than they are.
 */
import { constants, lstatSync, readdirSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { STAT_FIELDS, statAt, statMany } from './stat-many.js';
import type { Stamp, TreeLayout, WorkspaceStamps, WorkspaceSurvey } from './workspace-types.js';

function stampOf(info: Stats): Stamp {
  return { ino: info.ino, mode: info.mode, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs };
}

function lstatOrNull(path: string): Stats | null {
  return lstatSync(path, { throwIfNoEntry: false }) ?? null;
}

/** Every directory ('' for the root) and every file or link of a layout. */
function layoutPaths(layout: TreeLayout): string[] {
  return ['', ...layout.dirs, ...layout.files.keys()];
}

const directorySets = new WeakMap<TreeLayout, { dirs: Set<string>; withGitlinks: Set<string> }>();

/** The layout's directories, and its directories with its submodules, as sets (made once per layout). */
function setsOf(layout: TreeLayout): { dirs: Set<string>; withGitlinks: Set<string> } {
  let sets = directorySets.get(layout);
  if (!sets) {
    const dirs = new Set(layout.dirs);
    sets = { dirs, withGitlinks: layout.gitlinks.length === 0 ? dirs : new Set([...layout.dirs, ...layout.gitlinks]) };
    directorySets.set(layout, sets);
  }
  return sets;
}

/**
 * Gives `after`, made from `before` by adding and removing directories, the directory set of `before`,
 * changed in place rather than built again from every directory of `after`. `before` gets a new one if
 * it is asked again. Nothing where `before` has none yet, or either has submodules.
 */
export function handOverDirectorySet(before: TreeLayout, after: TreeLayout, added: readonly string[], removed: readonly string[]): void {
  const sets = directorySets.get(before);
  if (!sets || before.gitlinks.length > 0 || after.gitlinks.length > 0) return;
  directorySets.delete(before);
  for (const dir of removed) sets.dirs.delete(dir);
  for (const dir of added) sets.dirs.add(dir);
  directorySets.set(after, { dirs: sets.dirs, withGitlinks: sets.dirs });
}

/** Whether the layout has `path` as a directory (a tree). */
export function hasDirectory(layout: TreeLayout, path: string): boolean {
  return setsOf(layout).dirs.has(path);
}

/** Whether the layout has `path`, as a directory, a file or link, or a submodule. */
function inLayout(layout: TreeLayout, path: string): boolean {
  return layout.files.has(path) || setsOf(layout).withGitlinks.has(path);
}

/** `root` joined with a path git listed (no `.` or `..` components, no doubled slash): lstat only. */
function under(root: string, path: string): string {
  return path === '' ? root : `${root}/${path}`;
}

/**
 * Records the stat data of every path of `layout` in `root`, then writes the marker. With `reuse`, the
 * stamps are those of `reuse.from` (taken of the same workspace, for the layout it had then), with every
 * path of `reuse.restat` taken again or dropped where `layout` no longer has it: `restat` must hold every
 * path that changed since, and every path the two layouts differ in. `reuse.from` is taken over, not
 * copied (20,000 entries on a 10,000-file tree, milliseconds per item): it is not to be used again.
 * Undefined where the stamps could not be sound: the marker is not on the workspace's file system (its
 * clock granularity may differ), or the layout has names that cannot be looked up or submodules (whose
 * contents no stamp covers).
 */
export function takeStamps(
  root: string,
  marker: string,
  layout: TreeLayout,
  reuse?: { from: WorkspaceStamps; restat: ReadonlySet<string> },
): WorkspaceStamps | undefined {
  if (!layout.exact || layout.gitlinks.length > 0) return undefined;
  // Every WorkspaceStamps is made here, around a Map: the one taken over is changed in place.
  const stamps = reuse ? (reuse.from.stamps as Map<string, Stamp>) : new Map<string, Stamp>();
  const take = (path: string) => {
    const info = lstatOrNull(under(root, path));
    if (info)
      stamps.set(path, stampOf(info)); // a path that is missing has no stamp: it counts as changed
    else stamps.delete(path);
  };
  if (reuse) {
    for (const path of reuse.restat) {
      if (path === '' || inLayout(layout, path)) take(path);
      else stamps.delete(path);
    }
  } else {
    for (const path of layoutPaths(layout)) take(path);
  }
  rmSync(marker, { force: true }); // a new file: its ctime is the clock's now, whatever an old one's was
  writeFileSync(marker, '');
  const mark = lstatSync(marker);
  if (mark.dev !== lstatSync(root).dev) return undefined;
  return { stamps, racyFrom: mark.ctimeMs };
}

/**
 * Whether the data of path `i` in `values` (stat-many.ts) differ from the recorded stamp of `path` (or
 * nothing was recorded, or the stamp is racy). Compared in place: most paths are unchanged.
 */
function changedSince(recorded: WorkspaceStamps, path: string, values: Float64Array, i: number): boolean {
  const then = recorded.stamps.get(path);
  const at = i * STAT_FIELDS;
  return (
    then === undefined ||
    then.ctimeMs >= recorded.racyFrom ||
    then.ino !== values[at] ||
    then.mode !== values[at + 1] ||
    then.size !== values[at + 2] ||
    then.mtimeMs !== values[at + 3] ||
    then.ctimeMs !== values[at + 4]
  );
}

const isDirectoryMode = (mode: number) => (mode & constants.S_IFMT) === constants.S_IFDIR;

/**
 * Compares the workspace with its stamps. Null where the comparison cannot speak for git: a directory
 * of the base is gone, is no longer a directory or is another one; a tracked file became a directory; a
 * name is not UTF-8; a directory cannot be read. The caller then lets git walk the workspace. The
 * `lstat` of every path is done off the event loop (stat-many.ts), but for a short list, which costs less
 * than a message to a thread; nothing runs in the workspace then.
 */
export async function surveyWorkspace(root: string, layout: TreeLayout, recorded: WorkspaceStamps): Promise<WorkspaceSurvey | null> {
  const dirs = ['', ...layout.dirs];
  const files = [...layout.files.keys()];
  let values: Float64Array;
  try {
    values = await statMany(root, [...dirs, ...files]);
  } catch {
    return null;
  }
  const changedDirs: string[] = [];
  const untracked: string[] = [];
  try {
    for (let i = 0; i < dirs.length; i += 1) {
      const dir = dirs[i]!;
      const now = statAt(values, i);
      if (now === null || !isDirectoryMode(now.mode)) return null;
      if (!changedSince(recorded, dir, values, i)) continue;
      if (recorded.stamps.get(dir)?.ino !== now.ino) return null;
      changedDirs.push(dir);
      for (const entry of readdirSync(under(root, dir), { withFileTypes: true })) {
        if (entry.name.includes('\uFFFD')) return null;
        if (entry.name === '.git') continue; // git never lists a .git; the re-target removes it
        const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
        if (!inLayout(layout, path)) untracked.push(entry.isDirectory() ? `${path}/` : path);
      }
    }
    const touched: string[] = [];
    for (let i = 0; i < files.length; i += 1) {
      const path = files[i]!;
      const at = dirs.length + i;
      if (!changedSince(recorded, path, values, at)) continue;
      const now = statAt(values, at);
      if (now !== null && isDirectoryMode(now.mode)) return null;
      touched.push(path);
    }
    return { touched, untracked, changedDirs };
  } catch {
    return null;
  }
}

/** `path` and every directory above it ('' for the root). */
export function withParents(path: string): string[] {
  const out = [path];
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) out.push(path.slice(0, at));
  if (path !== '') out.push('');
  return out;
}
