/**
 * Moving a workspace from one base to the next by their difference: what a two-tree `read-tree -u` does,
 * at a cost that grows with what differs instead of with the repository. `read-tree` reads both trees
 * whole (every subtree, changed or not) and rewrites the index; here the difference is found in-process,
 * where subtrees with equal ids are never read. The files the next base drops are removed here; those
 * it adds or changes, and those the worker touched, are written here too where nothing could make git
 * write them otherwise (see {@link writesInProcess}), else by one `checkout-index`. The layout of the
 * next base follows from the old one and the difference, with no listing.
 *
 * The private index is left behind by a move written here: its entries that differ are kept as the
 * workspace's `indexBehind` and put into the index (`update-index --index-info`) by the next git step
 * that reads it (see {@link indexCatchUp}). A 10,000-file index is 1 MB that every git command reads
 * whole and `update-index` writes whole, which made the two git steps most of a move's cost.
 *
 * Only a difference of plain files and links is moved so: where a path is a file on one side and a
 * directory on the other, where a submodule or an empty tree is involved, or where a name is not UTF-8,
 * the caller lets `read-tree` do it.
 */
import { lstat, mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { AgoraError } from '../errors.js';
import { pathInside } from '../path-inside.js';
import type { GitStep } from './git-cli.js';
import { catchUpFile } from './workspace-git.js';
import { hfsVisible } from './tree-object.js';
import type { GitStore, Oid, TreeEntry } from './types.js';
import { sortedByPath, type TreeChange, type TreeChangeSide } from './tree-diff.js';
import type { IndexBehind, TreeLayout, Workspace } from './workspace-types.js';
import { handOverDirectorySet } from './workspace-stamps.js';
import { underDirectoriesOnly } from './workspace-untracked.js';

/** What moving from one base to the next changes. */
export interface BaseMove {
  /** Files and links that differ, sorted by path: added (`before` null), removed (`after` null), or changed. */
  readonly changes: readonly TreeChange[];
  /** Directories only the next base has, and directories only the old one has (each nested one too). */
  readonly dirsAdded: readonly string[];
  readonly dirsRemoved: readonly string[];
  /** The next base's layout. */
  readonly layout: TreeLayout;
}

interface Walk {
  store: GitStore;
  changes: TreeChange[];
  dirsAdded: string[];
  dirsRemoved: string[];
}

/** Thrown inside the walk where the difference is not one of plain files and links. */
class NotMovable extends Error {}

/**
 * The move from tree `from` (whose layout is `before`) to tree `to`, or null where git must do it: the
 * old layout is not exact or has submodules, or the difference has a submodule, a path that is a file on
 * one side and a directory on the other, or a name that is not UTF-8. Where there is a move, its layout
 * is made of `before`'s, whose file map it takes over: `before` is not to be used again.
 */
export async function baseMove(store: GitStore, from: Oid, to: Oid, before: TreeLayout): Promise<BaseMove | null> {
  if (!before.exact || before.gitlinks.length > 0) return null;
  const walk: Walk = { store, changes: [], dirsAdded: [], dirsRemoved: [] };
  try {
    await walkTrees(walk, from, to, '');
  } catch (e) {
    // A tree the in-process reader refuses (a name git takes on this system but Agora does not) is git's to move.
    if (e instanceof NotMovable || (e instanceof AgoraError && e.code === 'tree-invalid')) return null;
    throw e;
  }
  const changes = sortedByPath(walk.changes);
  return { changes, dirsAdded: walk.dirsAdded, dirsRemoved: walk.dirsRemoved, layout: layoutAfter(before, changes, walk.dirsAdded, walk.dirsRemoved) };
}

async function entriesOf(store: GitStore, tree: Oid | null): Promise<Map<string, TreeEntry>> {
  const map = new Map<string, TreeEntry>();
  if (tree === null) return map;
  const entries = await store.readTree(tree);
  // An empty tree is a directory git lists but never checks out: left to read-tree.
  if (entries.length === 0) throw new NotMovable();
  for (const e of entries) {
    if (e.type === 'commit' || e.path.includes('\uFFFD')) throw new NotMovable();
    map.set(e.path, e);
  }
  return map;
}

async function walkTrees(walk: Walk, a: Oid | null, b: Oid | null, prefix: string): Promise<void> {
  if (a === b) return;
  const [before, after] = await Promise.all([entriesOf(walk.store, a), entriesOf(walk.store, b)]);
  const subtrees: Array<Promise<void>> = [];
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    const x = before.get(name);
    const y = after.get(name);
    if (x && y && x.oid === y.oid && x.mode === y.mode) continue;
    if (x && y && (x.type === 'tree') !== (y.type === 'tree')) throw new NotMovable();
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (x?.type === 'tree' || y?.type === 'tree') {
      if (!x) walk.dirsAdded.push(path);
      if (!y) walk.dirsRemoved.push(path);
      subtrees.push(walkTrees(walk, x?.oid ?? null, y?.oid ?? null, path));
      continue;
    }
    walk.changes.push({ path, before: x ? { mode: x.mode, oid: x.oid } : null, after: y ? { mode: y.mode, oid: y.oid } : null });
  }
  await Promise.all(subtrees);
}

/**
 * The old layout with the difference applied (each file's entry written as `git ls-tree` gives it). The
 * old layout's file map is taken over, changed in place rather than copied (10,000 entries, milliseconds
 * per item), and so is its set of directories (workspace-stamps.ts).
 */
function layoutAfter(before: TreeLayout, changes: readonly TreeChange[], dirsAdded: readonly string[], dirsRemoved: readonly string[]): TreeLayout {
  if (changes.length === 0 && dirsAdded.length === 0 && dirsRemoved.length === 0) return before; // the same tree
  // Every layout is made around a Map (workspace.ts lists one, this function makes the next).
  const files = before.files as Map<string, string>;
  for (const c of changes) {
    if (c.after === null) files.delete(c.path);
    else files.set(c.path, `${c.after.mode} blob ${c.after.oid}`);
  }
  const removed = new Set(dirsRemoved);
  const dirs = removed.size === 0 ? [...before.dirs] : before.dirs.filter((d) => !removed.has(d));
  dirs.push(...dirsAdded);
  const after: TreeLayout = { dirs, files, gitlinks: [], exact: true };
  handOverDirectorySet(before, after, dirsAdded, dirsRemoved);
  return after;
}

/** The object id git writes for "no entry" in `--index-info` input (mode 0). */
const NO_OBJECT = '0'.repeat(40);

/** `behind` (what the index lacks) with the move's entries after it: a path's last entry wins. */
export function indexBehindAfter(behind: IndexBehind | undefined, move: BaseMove): Map<string, TreeChangeSide | null> {
  const entries = new Map(behind ?? []);
  for (const c of move.changes) entries.set(c.path, c.after);
  return entries;
}

/**
 * The git step that puts `entries` into the index file `indexFile` (`update-index --index-info`, which
 * the caller runs with GIT_INDEX_FILE naming it), its input written beside it first; null when there are
 * none. An entry put there has no stat data, so git
 * compares the content of its file wherever it looks. Putting the same entries there twice is harmless.
 */
export async function indexCatchUp(indexFile: string, entries: IndexBehind | undefined): Promise<{ step: GitStep; env: Record<string, string> } | null> {
  if (entries === undefined || entries.size === 0) return null;
  const lines: string[] = [];
  for (const [path, entry] of entries) lines.push(entry === null ? `0 ${NO_OBJECT}\t${path}\0` : `${entry.mode} ${entry.oid}\t${path}\0`);
  const file = catchUpFile(indexFile);
  await writeFile(file, lines.join(''));
  return { step: { shell: UPDATE_INDEX }, env: { AGORA_INDEX_INFO: file } };
}

/**
 * The files and links a move writes: those the bases differ in that the next base has, and `rewrite`,
 * the old base's files the worker touched (the caller removed them, so each is written afresh).
 */
export function pathsWritten(move: BaseMove, rewrite: readonly string[]): string[] {
  const dropped = new Set(droppedPaths(move));
  return [...new Set([...rewrite.filter((path) => !dropped.has(path)), ...move.changes.filter((c) => c.after !== null).map((c) => c.path)])];
}

/**
 * The git steps of a move whose files git writes: `entries` (what the index lacks, the move's own
 * entries among them) go into the index, then one `checkout-index` writes `written` from it. The index
 * keeps the stat data it had: an entry put there has none, one written again has that of a file since
 * removed, so git compares the content of either wherever it looks (and the stamps, not the index, say
 * what the next worker touched). Empty when there is nothing to put or write.
 */
export async function moveSteps(
  indexFile: string,
  entries: IndexBehind,
  written: readonly string[],
): Promise<{ steps: GitStep[]; env: Record<string, string> }> {
  const steps: GitStep[] = [];
  const env: Record<string, string> = { AGORA_CHECKOUT: `${indexFile}.checkout` };
  const catchUp = await indexCatchUp(indexFile, entries);
  if (catchUp) {
    steps.push(catchUp.step);
    Object.assign(env, catchUp.env);
  }
  if (written.length > 0) {
    await writeFile(env.AGORA_CHECKOUT!, written.map((path) => `${path}\0`).join(''));
    steps.push({ shell: CHECK_OUT });
  }
  return { steps, env };
}

/** Puts the entries listed in $AGORA_INDEX_INFO into the index (fixed text). */
const UPDATE_INDEX = 'git "$@" update-index -z --index-info < "$AGORA_INDEX_INFO"';

/** Writes the files listed in $AGORA_CHECKOUT from the index (fixed text). */
const CHECK_OUT = 'git "$@" checkout-index -f -q -z --stdin < "$AGORA_CHECKOUT"';

/** At most this many files are written in-process per move, and at most this many index entries are left behind: beyond, git does it. */
const MOST_WRITTEN_IN_PROCESS = 256;
const MOST_ENTRIES_BEHIND = 1024;

/**
 * Whether a move's files (`written`, entries of `layout`) can be written here rather than by git: nothing
 * could make git write them otherwise than as their bytes (no `.gitattributes` in either base, no
 * `info/attributes`: the workspace's git runs with filters, autocrlf and the user's attributes file off),
 * git would write each of them (see {@link gitMayRefuseLink}), and the move is small.
 */
export function writesInProcess(written: readonly string[], layout: TreeLayout, behind: IndexBehind, attributesMayApply: boolean): boolean {
  if (attributesMayApply || written.length > MOST_WRITTEN_IN_PROCESS || behind.size > MOST_ENTRIES_BEHIND) return false;
  return !written.some((path) => layout.files.get(path)?.startsWith('120000 ') === true && gitMayRefuseLink(path));
}

/**
 * Whether git may refuse a link at `path` that Agora's tree reader takes: git will not check out a link
 * named `.gitmodules` under any name a file system gives it (NTFS short names such as `gitmod~1` or
 * `gi7eba~1`, HFS+ ignored code points), nor put it in an index. Such a link is left to git, which does
 * with it what it always did; so is any link whose name has `git` or `~` in it, to be sure of the rest.
 */
function gitMayRefuseLink(path: string): boolean {
  const name = hfsVisible(path.slice(path.lastIndexOf('/') + 1)).toLowerCase();
  return name.includes('git') || name.includes('~');
}

/**
 * Writes what git's `checkout-index` would for each of `paths` (entries of `layout`), after creating the
 * directories the move adds: a file is created (never opened where something is: what was there goes
 * first, a link itself and never what it points at) with mode 0666, or 0777 for an executable, less the
 * umask, as git creates it; a link gets the target its blob holds. Each lies under directories only (the
 * survey found the old base's the same directories; the new ones are made here), or the move fails and
 * the pool makes the workspace afresh.
 */
export async function writeMoveFiles(ws: Workspace, layout: TreeLayout, dirsAdded: readonly string[], paths: readonly string[]): Promise<void> {
  for (const dir of [...dirsAdded].sort((a, b) => a.length - b.length)) {
    if (!underDirectoriesOnly(ws, dir)) throw new Error(`the move cannot make directory ${dir} here`);
    const abs = pathInside(ws.dir, dir, 'tree path');
    await mkdir(abs).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST' || !(await lstat(abs)).isDirectory()) throw e;
    });
  }
  for (const path of paths) {
    const [mode, , oid] = (layout.files.get(path) ?? '').split(' ');
    if (oid === undefined || !underDirectoriesOnly(ws, path)) throw new Error(`the move cannot write ${path} here`);
    const abs = pathInside(ws.dir, path, 'tree path');
    await unlinkIfThere(abs);
    const blob = await ws.store.readBlob(oid);
    if (mode === '120000') await symlink(Buffer.from(blob), abs);
    else await writeFile(abs, blob, { mode: mode === '100755' ? 0o777 : 0o666, flag: 'wx' });
  }
}

/** The files and links the next base does not have. */
export function droppedPaths(move: BaseMove): string[] {
  return move.changes.filter((c) => c.after === null).map((c) => c.path);
}

/**
 * Removes files and links of the old base from the workspace, before the move: those the next base
 * drops, and those written again (a file git finds unchanged is not rewritten in place). Each lies in a
 * directory of the old base, which the survey found to be the same directory; one that does not lie
 * under directories only is left (nothing outside is ever touched), and a link is removed itself, never
 * what it points at. Removing before git writes also keeps a name that differs only in case from a
 * dropped one where the file system folds case. Directories the next base drops are the caller's.
 */
export async function removeFiles(ws: Workspace, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    if (!underDirectoriesOnly(ws, path)) continue;
    await unlinkIfThere(pathInside(ws.dir, path, 'tree path'));
  }
}

/** Removes a file or link (never what a link points at); nothing where there is none. */
async function unlinkIfThere(path: string): Promise<void> {
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** Removes the files a move or a catch-up wrote next to the index file `indexFile`. */
export async function removeMoveFiles(indexFile: string): Promise<void> {
  await rm(catchUpFile(indexFile), { force: true });
  await rm(`${indexFile}.checkout`, { force: true });
}
