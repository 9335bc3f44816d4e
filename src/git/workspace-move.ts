/**
 * Moving a workspace from one base to the next by their difference: what a two-tree `read-tree -u` does,
 * at a cost that grows with what differs instead of with the repository. `read-tree` reads both trees
 * whole (every subtree, changed or not) and rewrites the index; here the difference is found in-process,
 * where subtrees with equal ids are never read, and git is given only the entries that differ:
 * `update-index --index-info` puts them in the index, one `checkout-index` writes their files and those
 * the worker changed, and the files the next base drops are removed here. The layout of the next base follows from the old one and the difference, with no listing.
 *
 * Only a difference of plain files and links is moved so: where a path is a file on one side and a
 * directory on the other, where a submodule or an empty tree is involved, or where a name is not UTF-8,
 * the caller lets `read-tree` do it.
 */
import { rm, unlink, writeFile } from 'node:fs/promises';
import { AgoraError } from '../errors.js';
import { pathInside } from '../path-inside.js';
import type { GitStep } from './git-cli.js';
import type { GitStore, Oid, TreeEntry } from './types.js';
import { sortedByPath, type TreeChange } from './tree-diff.js';
import type { TreeLayout, Workspace } from './workspace-types.js';
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
 * one side and a directory on the other, or a name that is not UTF-8.
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

/** The old layout with the difference applied (each file's entry written as `git ls-tree` gives it). */
function layoutAfter(before: TreeLayout, changes: readonly TreeChange[], dirsAdded: readonly string[], dirsRemoved: readonly string[]): TreeLayout {
  if (changes.length === 0 && dirsAdded.length === 0 && dirsRemoved.length === 0) return before; // the same tree
  const files = new Map(before.files);
  for (const c of changes) {
    if (c.after === null) files.delete(c.path);
    else files.set(c.path, `${c.after.mode} blob ${c.after.oid}`);
  }
  const removed = new Set(dirsRemoved);
  const dirs = removed.size === 0 ? [...before.dirs] : before.dirs.filter((d) => !removed.has(d));
  dirs.push(...dirsAdded);
  return { dirs, files, gitlinks: [], exact: true };
}

/** The object id git writes for "no entry" in `--index-info` input (mode 0). */
const NO_OBJECT = '0'.repeat(40);

/**
 * The git steps of a move, after the files they read are written next to the index: the entries that
 * differ go into the index, then one `checkout-index` writes the files the bases differ in together with
 * `rewrite`, the old base's files the worker touched (from the index, which holds the old base's entry
 * for those the bases do not differ in; the caller removed them first, so each is written afresh). The
 * index keeps the stat data it had: an entry the move put there has none, one written again has that of
 * a file since removed, so git compares the content of either wherever it looks (and the stamps, not the
 * index, say what the next worker touched). Empty when nothing differs and nothing is to be rewritten.
 */
export async function moveSteps(indexFile: string, move: BaseMove, rewrite: readonly string[]): Promise<{ steps: GitStep[]; env: Record<string, string> }> {
  const steps: GitStep[] = [];
  const env = { AGORA_INDEX_INFO: `${indexFile}.move`, AGORA_CHECKOUT: `${indexFile}.checkout` };
  if (move.changes.length > 0) {
    const entries = move.changes.map((c) => (c.after === null ? `0 ${NO_OBJECT}\t${c.path}\0` : `${c.after.mode} ${c.after.oid}\t${c.path}\0`));
    await writeFile(env.AGORA_INDEX_INFO, entries.join(''));
    steps.push({ shell: UPDATE_INDEX });
  }
  const dropped = new Set(move.changes.filter((c) => c.after === null).map((c) => c.path));
  const written = new Set([...rewrite.filter((path) => !dropped.has(path)), ...move.changes.filter((c) => c.after !== null).map((c) => c.path)]);
  if (written.size > 0) {
    await writeFile(env.AGORA_CHECKOUT, [...written].map((path) => `${path}\0`).join(''));
    steps.push({ shell: CHECK_OUT });
  }
  return { steps, env };
}

/** Puts the entries listed in $AGORA_INDEX_INFO into the index (fixed text). */
const UPDATE_INDEX = 'git "$@" update-index -z --index-info < "$AGORA_INDEX_INFO"';

/** Writes the files listed in $AGORA_CHECKOUT from the index (fixed text). */
const CHECK_OUT = 'git "$@" checkout-index -f -q -z --stdin < "$AGORA_CHECKOUT"';

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
    await unlink(pathInside(ws.dir, path, 'tree path')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

/** Removes the files a move wrote next to the index. */
export async function removeMoveFiles(indexFile: string): Promise<void> {
  await rm(`${indexFile}.move`, { force: true });
  await rm(`${indexFile}.checkout`, { force: true });
}
