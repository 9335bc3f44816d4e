/**
 * Replaying a run's integration commits onto a branch that moved while the run worked (DESIGN.md §3, §7).
 *
 * A run starts at a plan commit `base`; its integration ref ends at base + one commit per done item, each
 * changing a set of paths (items have disjoint write scopes). When people pushed to the branch meanwhile
 * (`base..onto`), the integration commits are carried over by tree surgery, the same operation that built
 * them, provided no person changed a path a patch changed. Pure object work over the GitStore port: no ref
 * moves, no working tree.
 */
import { AgoraError } from '../errors.js';
import { agoraIdentity } from '../git/identity.js';
import { trailers } from '../git/trailers.js';
import { diffTrees, type TreeChange } from '../git/tree-diff.js';
import { applyTreeChanges, type PathChange } from '../git/tree-edit.js';
import type { CommitData, GitStore, Oid } from '../git/types.js';

export interface ReplayConflict {
  /** A path the patch commit changed that meets a path a person changed (equal, or one a directory of the other). */
  path: string;
  /** The integration commit whose change meets it. */
  patchCommit: Oid;
  /** The item of that commit (its `Agora-Item:` trailer), or null when it has none. */
  item: string | null;
  /** Commits in base..onto (first-parent) whose own diff touched the path, oldest first. */
  changedBy: Oid[];
}

export type ReplayResult =
  | { kind: 'replayed'; head: Oid; commits: Array<{ original: Oid; replayed: Oid }> }
  | { kind: 'conflict'; conflicts: ReplayConflict[] }
  /** `onto` does not descend from `base` along first parents (a force-push or history rewrite). */
  | { kind: 'diverged'; why: string };

const DEFAULT_MAX_COMMITS = 10_000;

interface Patch {
  oid: Oid;
  commit: CommitData;
  changes: TreeChange[];
}

/**
 * Replays the first-parent chain `base..head` (oldest first) onto `onto`, keeping each commit's message
 * and author; the committer is Agora at `now` (milliseconds). Returns the conflicts instead when a patch
 * path meets a path changed in `base..onto`, and `diverged` when `onto` does not have `base` on its
 * first-parent chain within `maxCommits` commits.
 */
export async function replayPatches(
  store: GitStore,
  args: { base: Oid; head: Oid; onto: Oid; now: number; maxCommits?: number },
): Promise<ReplayResult> {
  const { base, head, onto } = args;
  const max = args.maxCommits ?? DEFAULT_MAX_COMMITS;
  if (head === base) return { kind: 'replayed', head: onto, commits: [] };

  const patchOids = await patchChain(store, base, head, max);

  const human = await firstParentChain(store, base, onto, max);
  if (typeof human === 'string') return { kind: 'diverged', why: human };

  const baseTree = (await store.readCommit(base)).tree;
  const ontoTree = human.length === 0 ? baseTree : (await store.readCommit(onto)).tree;

  const patches: Patch[] = [];
  for (const oid of patchOids) {
    const commit = await store.readCommit(oid);
    const parentTree = (await store.readCommit(commit.parents[0]!)).tree;
    patches.push({ oid, commit, changes: await diffTrees(store, parentTree, commit.tree) });
  }

  const humanPaths = new PathIndex((await diffTrees(store, baseTree, ontoTree)).map((c) => c.path));
  const met: Array<{ patch: Patch; path: string }> = [];
  for (const patch of patches) {
    for (const change of patch.changes) if (humanPaths.meets(change.path)) met.push({ patch, path: change.path });
  }
  if (met.length > 0) return { kind: 'conflict', conflicts: await describeConflicts(store, human, met) };

  const commits: Array<{ original: Oid; replayed: Oid }> = [];
  let parent = onto;
  let tree = ontoTree;
  const committer = agoraIdentity(args.now);
  for (const patch of patches) {
    tree = await applyTreeChanges(store, tree, patch.changes.map(toPathChange));
    const replayed = await store.writeCommit({
      tree,
      parents: [parent],
      message: patch.commit.message,
      author: patch.commit.author,
      committer,
    });
    commits.push({ original: patch.oid, replayed });
    parent = replayed;
  }
  return { kind: 'replayed', head: parent, commits };
}

function toPathChange(change: TreeChange): PathChange {
  return { path: change.path, entry: change.after ? { mode: change.after.mode, oid: change.after.oid } : null };
}

/** The integration commits `base..head` along first parents, oldest first; throws when base is not on that chain. */
async function patchChain(store: GitStore, base: Oid, head: Oid, max: number): Promise<Oid[]> {
  const chain = await firstParentChain(store, base, head, max);
  if (typeof chain === 'string') {
    throw new AgoraError(
      'replay-invalid',
      `integration head ${head} does not descend from the run's base ${base}: ${chain}`,
      'pass the run\'s plan commit as base and its refs/agora/integration/<run> commit as head',
    );
  }
  return chain;
}

/**
 * The commits from `tip` down to `base` (exclusive) along first parents, oldest first; or, when `base` is
 * not reached within `max` commits (or the chain ends first), why not.
 */
async function firstParentChain(store: GitStore, base: Oid, tip: Oid, max: number): Promise<Oid[] | string> {
  const chain: Oid[] = [];
  let current = tip;
  while (current !== base) {
    if (chain.length >= max) return `${base} is not among the ${max} first-parent ancestors of ${tip}`;
    const commit = await store.readCommit(current);
    chain.push(current);
    const parent = commit.parents[0];
    if (parent === undefined) return `the first-parent history of ${tip} ends at root commit ${current} without reaching ${base}`;
    current = parent;
  }
  return chain.reverse();
}

/**
 * A set of changed paths that answers whether another path meets one of them: equal to one, below one (a
 * file became a directory) or above one (a directory became a file), always at `/` boundaries.
 */
class PathIndex {
  private readonly paths: Set<string>;
  /** Every proper directory prefix of a path in the set. */
  private readonly dirs = new Set<string>();

  constructor(paths: Iterable<string>) {
    this.paths = new Set(paths);
    for (const p of this.paths) for (const dir of ancestors(p)) this.dirs.add(dir);
  }

  get size(): number {
    return this.paths.size;
  }

  meets(path: string): boolean {
    if (this.paths.has(path) || this.dirs.has(path)) return true;
    for (const dir of ancestors(path)) if (this.paths.has(dir)) return true;
    return false;
  }
}

/** `a/b/c` → `a`, `a/b`. */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}

/** Finds, for each met patch path, the human commits (oldest first) whose own first-parent diff meets it. */
async function describeConflicts(store: GitStore, human: Oid[], met: Array<{ patch: Patch; path: string }>): Promise<ReplayConflict[]> {
  const touched: Array<{ oid: Oid; paths: PathIndex }> = [];
  for (const oid of human) {
    const commit = await store.readCommit(oid);
    const parentTree = (await store.readCommit(commit.parents[0]!)).tree;
    const paths = new PathIndex((await diffTrees(store, parentTree, commit.tree)).map((c) => c.path));
    if (paths.size > 0) touched.push({ oid, paths });
  }
  return met.map(({ patch, path }) => ({
    path,
    patchCommit: patch.oid,
    item: agoraItemOf(patch.commit.message),
    changedBy: touched.filter((t) => t.paths.meets(path)).map((t) => t.oid),
  }));
}

function agoraItemOf(message: string): string | null {
  return trailers(message).get('Agora-Item') || null;
}
