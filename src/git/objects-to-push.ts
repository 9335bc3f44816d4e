/**
 * The objects a push must carry so that the remote has everything new ref values name, found by
 * walking from the new commits back to commits the remote is known to have, and comparing each new
 * commit's tree with its parent's. A remote that has a commit has everything it reaches (GitHub, like
 * git, refuses a ref whose objects are not all there), so a tree equal to the parent's is skipped without
 * reading it. This is `git rev-list --objects <new> --not <known>` for the shapes Agora writes: linear
 * history a few commits past what the remote has. Anything else (a merge, a history longer than the
 * bounds) answers null, and the caller pushes with the git CLI, which negotiates with the remote.
 */
import type { GitStore, Oid, TreeEntry } from './types.js';

export interface PushObjectBounds {
  /** New commits walked before giving up (default 256). */
  maxCommits?: number;
  /** Objects collected before giving up (default 20,000). */
  maxObjects?: number;
}

const DEFAULT_MAX_COMMITS = 256;
const DEFAULT_MAX_OBJECTS = 20_000;

/**
 * Every object reachable from `tips` that is not reachable from a commit `known` says the remote has,
 * or null when the walk leaves the shapes it handles (see the module's comment). Known tips give none.
 */
export async function objectsToPush(
  store: GitStore,
  tips: readonly Oid[],
  known: (commit: Oid) => boolean,
  bounds: PushObjectBounds = {},
): Promise<Oid[] | null> {
  const maxCommits = bounds.maxCommits ?? DEFAULT_MAX_COMMITS;
  const maxObjects = bounds.maxObjects ?? DEFAULT_MAX_OBJECTS;
  const objects = new Set<Oid>();
  const walked = new Set<Oid>();
  const pending = tips.filter((t) => !known(t));
  while (pending.length > 0) {
    const oid = pending.pop()!;
    if (walked.has(oid)) continue;
    walked.add(oid);
    if (walked.size > maxCommits) return null;
    const commit = await store.readCommit(oid);
    if (commit.parents.length > 1) return null;
    objects.add(oid);
    const parent = commit.parents[0] ?? null;
    const parentTree = parent === null ? null : (await store.readCommit(parent)).tree;
    if (!(await addNewTreeObjects(store, commit.tree, parentTree, objects, maxObjects))) return null;
    if (parent !== null && !known(parent)) pending.push(parent);
  }
  return [...objects];
}

/**
 * Adds `tree` and everything in it that `old` (a tree the remote has, or will have from this push) does
 * not have at the same path. False when the objects pass `maxObjects`.
 */
async function addNewTreeObjects(store: GitStore, tree: Oid, old: Oid | null, into: Set<Oid>, maxObjects: number): Promise<boolean> {
  if (tree === old || into.has(tree)) return true;
  into.add(tree);
  if (into.size > maxObjects) return false;
  const before = new Map<string, TreeEntry>();
  if (old !== null) for (const e of await store.readTree(old)) before.set(e.path, e);
  for (const entry of await store.readTree(tree)) {
    const was = before.get(entry.path);
    if (was?.oid === entry.oid || entry.type === 'commit') continue; // unchanged, or a submodule's commit (not in this repository)
    if (entry.type === 'tree') {
      if (!(await addNewTreeObjects(store, entry.oid, was?.type === 'tree' ? was.oid : null, into, maxObjects))) return false;
    } else {
      into.add(entry.oid);
      if (into.size > maxObjects) return false;
    }
  }
  return true;
}
