/**
 * The difference between two trees as a list of changed non-tree paths (files, symlinks, submodules),
 * the shape patches and integration work with (DESIGN.md §3).
 */
import type { GitStore, Oid, TreeEntry, TreeEntryMode } from './types.js';
import { limiter } from './limiter.js';

/** A tree entry's mode and object, as a change sees it. */
export interface TreeChangeSide {
  mode: TreeEntryMode;
  oid: Oid;
}

/** One changed path: `before` null is an addition, `after` null a deletion, both set a modification. */
export interface TreeChange {
  path: string;
  before: TreeChangeSide | null;
  after: TreeChangeSide | null;
}

/**
 * Every non-tree path whose entry differs between tree `a` and tree `b` (null: an empty tree), sorted by
 * path (bytewise). Subtrees with equal ids are skipped without reading them; a file replaced by a
 * directory (or the reverse) yields the file's deletion (addition) and the directory's files' additions
 * (deletions); a mode-only change (e.g. the exec bit) is a modification.
 */
export async function diffTrees(store: GitStore, a: Oid | null, b: Oid | null): Promise<TreeChange[]> {
  const out: TreeChange[] = [];
  await diffInto({ store, out, limit: limiter(16) }, a, b, '');
  return sortedByPath(out);
}

/** Changes sorted by path, bytewise (git's order). */
export function sortedByPath(changes: readonly TreeChange[]): TreeChange[] {
  return changes
    .map((c) => ({ c, key: Buffer.from(c.path, 'utf8') }))
    .sort((x, y) => Buffer.compare(x.key, y.key))
    .map((x) => x.c);
}

interface DiffContext {
  store: GitStore;
  out: TreeChange[];
  /** Bounds how many tree reads are in flight (wide trees would otherwise open every subtree at once). */
  limit: <T>(task: () => Promise<T>) => Promise<T>;
}

async function entriesOf(ctx: DiffContext, tree: Oid | null): Promise<Map<string, TreeEntry>> {
  const map = new Map<string, TreeEntry>();
  if (tree) for (const e of await ctx.limit(() => ctx.store.readTree(tree))) map.set(e.path, e);
  return map;
}

async function diffInto(ctx: DiffContext, a: Oid | null, b: Oid | null, prefix: string): Promise<void> {
  if (a === b) return;
  const [before, after] = await Promise.all([entriesOf(ctx, a), entriesOf(ctx, b)]);
  const names = new Set([...before.keys(), ...after.keys()]);
  const subdiffs: Array<Promise<void>> = [];
  for (const name of names) {
    const x = before.get(name);
    const y = after.get(name);
    const path = prefix ? `${prefix}/${name}` : name;
    if (x && y && x.oid === y.oid && x.mode === y.mode) continue;
    const xTree = x?.type === 'tree' ? x.oid : null;
    const yTree = y?.type === 'tree' ? y.oid : null;
    if (xTree || yTree) subdiffs.push(diffInto(ctx, xTree, yTree, path));
    const xLeaf = x && x.type !== 'tree' ? { mode: x.mode, oid: x.oid } : null;
    const yLeaf = y && y.type !== 'tree' ? { mode: y.mode, oid: y.oid } : null;
    if (xLeaf || yLeaf) ctx.out.push({ path, before: xLeaf, after: yLeaf });
  }
  await Promise.all(subdiffs);
}

/** What commit `oid` changed against its first parent (everything, for a root commit). */
export async function commitChanges(store: GitStore, oid: Oid): Promise<TreeChange[]> {
  const commit = await store.readCommit(oid);
  const parent = commit.parents[0];
  return diffTrees(store, parent ? (await store.readCommit(parent)).tree : null, commit.tree);
}
