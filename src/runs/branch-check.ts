import { trailers } from '../git/trailers.js';
import { diffTrees, type TreeChange } from '../git/tree-diff.js';
import type { GitStore, Oid } from '../git/types.js';

/**
 * What a branch holds above a run's plan commit, checked against the run's patches: the merge gate's
 * second half (the first is the audit bundle). From the head down, the branch must hold the run's
 * integration commits — each naming its run, item and patch in trailers, and changing exactly what that
 * patch changed — one per item whose patch changed something. Below them may sit commits people pushed
 * while the run worked, when the patches were replayed on top of them (src/runs/replay.ts): those are
 * reported, not audited, and must not touch a patched path. Any other commit is a problem, named.
 */

export interface BranchRun {
  runId: string;
  /** The plan commit. */
  base: Oid;
  items: ReadonlyArray<{ id: string; resultRef?: string | null | undefined; status: string }>;
}

export interface BranchCheck {
  /** Why the branch is not the plan commit plus the run's audited patches (empty: it is). */
  problems: string[];
  /** People's commits below the replayed patches (oldest first): not audited, reviewed as usual. */
  people: Array<{ sha: Oid; subject: string }>;
  /** Integration commits found. */
  patches: number;
}

const MAX_COMMITS = 10_000;

export async function checkBranch(store: GitStore, head: Oid, run: BranchRun): Promise<BranchCheck> {
  const problems: string[] = [];
  const chain: Array<{ sha: Oid; subject: string; parent: Oid | undefined; tree: Oid; message: string }> = [];
  let at: Oid | undefined = head;
  while (at && at !== run.base) {
    if (chain.length >= MAX_COMMITS) return { problems: [`more than ${MAX_COMMITS} commits after the plan commit ${run.base.slice(0, 12)}`], people: [], patches: 0 };
    const c = await store.readCommit(at);
    chain.push({ sha: at, subject: c.message.split('\n')[0] ?? '', parent: c.parents[0], tree: c.tree, message: c.message });
    at = c.parents[0];
  }
  if (!at) return { problems: [`${head.slice(0, 12)} does not descend from the plan commit ${run.base.slice(0, 12)}`], people: [], patches: 0 };

  // The patches the run made, and what each changed.
  const patchOf = new Map<string, Oid>();
  for (const i of run.items) {
    const m = /^git:([0-9a-f]{40})$/.exec(i.resultRef ?? '');
    if (i.status === 'done' && m) patchOf.set(i.id, m[1]!);
  }
  const changesOf = new Map<Oid, TreeChange[]>();
  const patchChanges = async (patch: Oid) => {
    let changes = changesOf.get(patch);
    if (!changes) {
      const p = await store.readCommit(patch);
      changes = await diffTrees(store, p.parents[0] ? (await store.readCommit(p.parents[0])).tree : null, p.tree);
      changesOf.set(patch, changes);
    }
    return changes;
  };

  // From the head down: integration commits first, then (only under replayed patches) people's commits.
  // Classified oldest first, so that of two commits carrying one patch the later is named as the repeat.
  const seen = new Set<string>();
  const patchedPaths: string[] = [];
  let patches = 0;
  let lowestPatch = -1;
  const kinds: Array<'patch' | 'other'> = [];
  for (let n = chain.length - 1; n >= 0; n -= 1) {
    const c = chain[n]!;
    const t = trailers(c.message);
    const item = t.get('Agora-Item');
    const patch = item !== undefined ? patchOf.get(item) : undefined;
    if (t.get('Agora-Run') !== run.runId || !patch || t.get('Agora-Patch') !== patch) {
      kinds[n] = 'other';
      continue;
    }
    kinds[n] = 'patch';
    if (lowestPatch < 0) lowestPatch = n;
    patches += 1;
    if (seen.has(item!)) problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") repeats the patch of item ${item}`);
    seen.add(item!);
    const expected = await patchChanges(patch);
    const actual = await diffTrees(store, c.parent ? (await store.readCommit(c.parent)).tree : null, c.tree);
    if (changeKeys(actual) !== changeKeys(expected)) {
      problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") names item ${item}'s patch but does not change what that patch changed`);
    }
    patchedPaths.push(...expected.map((x) => x.path));
  }
  const people: BranchCheck['people'] = [];
  for (const [n, c] of chain.entries()) {
    if (kinds[n] !== 'other') continue;
    if (n < lowestPatch || lowestPatch < 0) {
      problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") is not an audited patch of run ${run.runId}`);
      continue;
    }
    const touched = await diffTrees(store, c.parent ? (await store.readCommit(c.parent)).tree : null, c.tree);
    const hit = touched.find((x) => patchedPaths.some((p) => overlaps(p, x.path)));
    if (hit) problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") changes \`${hit.path}\`, which a patch of run ${run.runId} changes too`);
    else people.unshift({ sha: c.sha, subject: c.subject });
  }
  for (const [item, patch] of patchOf) {
    if (!seen.has(item) && (await patchChanges(patch)).length > 0) problems.push(`the patch of item ${item} (${patch.slice(0, 12)}) is not on the branch`);
  }
  return { problems, people, patches };
}

function changeKeys(changes: readonly TreeChange[]): string {
  return changes.map((c) => `${c.path}\0${c.after ? `${c.after.mode} ${c.after.oid}` : '-'}`).sort().join('\n');
}

/** Equal paths, or one a directory of the other. */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}
