import { patchCommitOf } from '../log/result-ref.js';
import { firstParentChain } from '../git/history.js';
import { PathSet } from '../git/path-set.js';
import { trailers } from '../git/trailers.js';
import { commitChanges, type TreeChange } from '../git/tree-diff.js';
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
  /**
   * Why the branch is not the plan commit plus the run's audited patches (empty: it is). Plain sentences,
   * not markdown: they quote commit subjects and paths people wrote, which a renderer must escape.
   */
  problems: string[];
  /** People's commits below the replayed patches (oldest first): not audited, reviewed as usual. */
  people: Array<{ sha: Oid; subject: string }>;
  /** Integration commits found. */
  patches: number;
}

const MAX_COMMITS = 10_000;

export async function checkBranch(store: GitStore, head: Oid, run: BranchRun): Promise<BranchCheck> {
  const problems: string[] = [];
  const found = await firstParentChain(store, run.base, head, MAX_COMMITS);
  if (!found.ok) {
    const why =
      found.reason === 'limit'
        ? `more than ${MAX_COMMITS} commits after the plan commit ${run.base.slice(0, 12)}`
        : `${head.slice(0, 12)} does not descend from the plan commit ${run.base.slice(0, 12)}`;
    return { problems: [why], people: [], patches: 0 };
  }
  // Head first, as the branch reads from its tip.
  const chain: Array<{ sha: Oid; subject: string; message: string }> = [];
  for (const sha of found.chain.reverse()) {
    const { message } = await store.readCommit(sha);
    chain.push({ sha, subject: message.split('\n')[0] ?? '', message });
  }

  // The patches the run made, and what each changed.
  const patchOf = new Map<string, Oid>();
  for (const i of run.items) {
    const patch = patchCommitOf(i.resultRef);
    if (i.status === 'done' && patch) patchOf.set(i.id, patch);
  }
  const changesOf = new Map<Oid, TreeChange[]>();
  const patchChanges = async (patch: Oid) => {
    let changes = changesOf.get(patch);
    if (!changes) {
      changes = await commitChanges(store, patch);
      changesOf.set(patch, changes);
    }
    return changes;
  };

  // From the head down: integration commits first, then (only under replayed patches) people's commits.
  // Classified oldest first, so that of two commits carrying one patch the later is named as the repeat.
  const seen = new Set<string>();
  const patchedPaths = new Set<string>();
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
    if (changeKeys(await commitChanges(store, c.sha)) !== changeKeys(expected)) {
      problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") names item ${item}'s patch but does not change what that patch changed`);
    }
    for (const x of expected) patchedPaths.add(x.path);
  }
  const patched = new PathSet(patchedPaths);
  const people: BranchCheck['people'] = [];
  for (const [n, c] of chain.entries()) {
    if (kinds[n] !== 'other') continue;
    if (n < lowestPatch || lowestPatch < 0) {
      problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") is not an audited patch of run ${run.runId}`);
      continue;
    }
    const hit = (await commitChanges(store, c.sha)).find((x) => patched.meets(x.path));
    if (hit) problems.push(`commit ${c.sha.slice(0, 12)} ("${c.subject}") changes "${hit.path}", which a patch of run ${run.runId} changes too`);
    else people.unshift({ sha: c.sha, subject: c.subject });
  }
  for (const [item, patch] of patchOf) {
    if (!seen.has(item) && (await patchChanges(patch)).length > 0) problems.push(`the patch of item ${item} (${patch.slice(0, 12)}) is not on the branch`);
  }
  return { problems, people, patches };
}

function changeKeys(changes: readonly TreeChange[]): string {
  return changes
    .map((c) => `${c.path}\0${c.after ? `${c.after.mode} ${c.after.oid}` : '-'}`)
    .sort()
    .join('\n');
}
