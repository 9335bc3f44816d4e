/**
 * Tree surgery: a new root tree from a base tree and a set of path changes, rewriting only the trees on
 * the changed paths (every other subtree is reused by id). Integration (DESIGN.md §3) is this operation.
 */
import { AgoraError } from '../errors.js';
import { assertEntryName, typeForMode } from './tree-object.js';
import type { GitStore, Oid, TreeEntry, TreeEntryMode } from './types.js';
import { limiter } from './limiter.js';

/** The id of git's empty tree. */
export const EMPTY_TREE: Oid = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** What tree surgery needs of a store: reading and writing trees. */
export type TreeAccess = Pick<GitStore, 'readTree' | 'writeTree'>;

/** One path to set (to a blob, symlink or submodule entry) or to delete (`entry: null`). */
export interface PathChange {
  /** A `/`-separated repository path to a non-tree entry, e.g. `src/a.ts`. */
  path: string;
  entry: { mode: TreeEntryMode; oid: Oid } | null;
}

/** The changes below one tree, grouped by the entry name they go through. */
interface Edit {
  /** A change of this very name (set or delete), if any. */
  own?: PathChange['entry'];
  /** Changes below this name, which make it a tree. */
  below: Map<string, Edit>;
}

/**
 * Applies `changes` to `baseTree` (null: start from nothing) and returns the new root tree's id.
 * Setting a path whose parent is a file replaces the file by a directory; setting a path that is a
 * directory replaces the directory by the entry; deleting removes the file, link or submodule at the path
 * (a directory there, or a missing path, is left alone); trees left empty are removed (an empty root is git's empty tree). Paths must be unique and must not set a tree entry
 * directly (mode 040000): directories follow from the paths below them.
 */
export async function applyTreeChanges(store: TreeAccess, baseTree: Oid | null, changes: ReadonlyArray<PathChange>): Promise<Oid> {
  const root: Edit = { below: new Map() };
  const seen = new Set<string>();
  for (const change of changes) {
    if (seen.has(change.path)) {
      throw new AgoraError('tree-edit-invalid', `path "${change.path}" is changed twice`, 'pass each path at most once');
    }
    seen.add(change.path);
    if (change.entry?.mode === '040000') {
      throw new AgoraError('tree-edit-invalid', `path "${change.path}" is set to a tree`, 'set the files below it instead');
    }
    let node = root;
    const parts = splitPath(change.path);
    for (const part of parts) {
      let next = node.below.get(part);
      if (!next) {
        next = { below: new Map() };
        node.below.set(part, next);
      }
      node = next;
    }
    node.own = change.entry;
  }
  for (const [path, problem] of conflicts(root, '')) {
    throw new AgoraError('tree-edit-invalid', `path "${path}" ${problem}`, 'a path cannot be both a file and a directory in one change set');
  }
  // Sibling subtrees go concurrently; a bounded number of reads and writes at a time (a first write of a
  // large tree would otherwise open every file at once).
  const limit = limiter(16);
  const bounded: TreeAccess = { readTree: (oid) => limit(() => store.readTree(oid)), writeTree: (entries) => limit(() => store.writeTree(entries)) };
  return (await rewrite(bounded, baseTree, root)) ?? (await store.writeTree([]));
}

/** Yields paths that are set to a file while other changes go below them. */
function* conflicts(edit: Edit, prefix: string): Generator<[string, string]> {
  for (const [name, child] of edit.below) {
    const path = prefix ? `${prefix}/${name}` : name;
    if (child.own && child.below.size > 0 && hasSet(child)) yield [path, 'is set to a file while paths below it are changed'];
    yield* conflicts(child, path);
  }
}

function hasSet(edit: Edit): boolean {
  for (const child of edit.below.values()) if (child.own || hasSet(child)) return true;
  return false;
}

function splitPath(path: string): string[] {
  const parts = path.split('/');
  for (const part of parts) {
    try {
      assertEntryName(part);
    } catch {
      throw new AgoraError(
        'tree-edit-invalid',
        `path "${path}" is not a valid repository path`,
        'use /-separated components without empty, ., .. or .git parts',
      );
    }
  }
  return parts;
}

/**
 * Rewrites `tree` (null: none) with `edit`; returns null when the result is empty. Sibling subtrees are
 * rewritten concurrently (each under its own name, so they never touch the same entry): a state commit's
 * `items/` and `logs/` paths, for one, no longer wait on each other's reads and writes.
 */
async function rewrite(store: TreeAccess, tree: Oid | null, edit: Edit): Promise<Oid | null> {
  const entries = new Map<string, TreeEntry>();
  if (tree) for (const e of await store.readTree(tree)) entries.set(e.path, e);
  let changed = false;
  const below: Array<Promise<void>> = [];
  for (const [name, child] of edit.below) {
    const current = entries.get(name);
    if (child.own !== undefined) {
      if (child.own === null) {
        // Deleting names a file, link or submodule; a directory there is left to the paths below it.
        if (current && current.type !== 'tree') {
          entries.delete(name);
          changed = true;
        }
      } else {
        const next: TreeEntry = { mode: child.own.mode, path: name, oid: child.own.oid, type: typeForMode(child.own.mode) };
        if (!current || current.mode !== next.mode || current.oid !== next.oid) changed = true;
        entries.set(name, next);
        continue;
      }
    }
    if (child.below.size === 0) continue;
    const after = entries.get(name);
    const subtree = after?.type === 'tree' ? after.oid : null;
    below.push(
      rewrite(store, subtree, child).then((rewritten) => {
        if (rewritten === null) {
          // Nothing left below: drop the directory (a file there stays; only deletions went below it).
          if (subtree) {
            entries.delete(name);
            changed = true;
          }
        } else if (rewritten !== subtree) {
          entries.set(name, { mode: '040000', path: name, oid: rewritten, type: 'tree' });
          changed = true;
        }
      }),
    );
  }
  await Promise.all(below);
  if (entries.size === 0) return null;
  if (!changed && tree) return tree;
  return store.writeTree([...entries.values()]);
}
