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
import { firstParentChain } from '../git/history.js';
import { PathSet } from '../git/path-set.js';
import { commitChanges, diffTrees, type TreeChange } from '../git/tree-diff.js';
import { applyTreeChanges } from '../git/tree-edit.js';
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
export async function replayPatches(store: GitStore, args: { base: Oid; head: Oid; onto: Oid; now: number; maxCommits?: number }): Promise<ReplayResult> {
  const { base, head, onto } = args;
  const max = args.maxCommits ?? DEFAULT_MAX_COMMITS;
  if (head === base) return { kind: 'replayed', head: onto, commits: [] };

  const patchOids = await patchChain(store, base, head, max);

  const ontoChain = await firstParentChain(store, base, onto, max);
  if (!ontoChain.ok) return { kind: 'diverged', why: ontoChain.why };
  const human = ontoChain.chain;

  const baseTree = (await store.readCommit(base)).tree;
  const ontoTree = human.length === 0 ? baseTree : (await store.readCommit(onto)).tree;

  const patches: Patch[] = [];
  for (const oid of patchOids) {
    patches.push({ oid, commit: await store.readCommit(oid), changes: await commitChanges(store, oid) });
  }

  const humanPaths = new PathSet((await diffTrees(store, baseTree, ontoTree)).map((c) => c.path));
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
    tree = await applyTreeChanges(
      store,
      tree,
      patch.changes.map((c) => ({ path: c.path, entry: c.after })),
    );
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

/** The integration commits `base..head` along first parents, oldest first; throws when base is not on that chain. */
async function patchChain(store: GitStore, base: Oid, head: Oid, max: number): Promise<Oid[]> {
  const found = await firstParentChain(store, base, head, max);
  if (!found.ok) {
    throw new AgoraError(
      'replay-invalid',
      `integration head ${head} does not descend from the run's base ${base}: ${found.why}`,
      "pass the run's plan commit as base and its refs/agora/integration/<run> commit as head",
    );
  }
  return found.chain;
}

/** Finds, for each met patch path, the human commits (oldest first) whose own first-parent diff meets it. */
async function describeConflicts(store: GitStore, human: Oid[], met: Array<{ patch: Patch; path: string }>): Promise<ReplayConflict[]> {
  const touched: Array<{ oid: Oid; paths: PathSet }> = [];
  for (const oid of human) {
    const paths = new PathSet((await commitChanges(store, oid)).map((c) => c.path));
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
