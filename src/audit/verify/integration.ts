import { errorMessage } from '../../errors.js';
import { diffTrees, type TreeChange } from '../../git/tree-diff.js';
import type { GitStore, Oid, TreeEntry } from '../../git/types.js';
import { patchCommitOf } from '../../log/result-ref.js';
import { outOfScope } from '../../plan/locks.js';
import { SILENT, type Progress } from '../../progress.js';
import type { RunRefs } from '../../runs/refs.js';
import type { AuditBundle } from '../bundle.js';
import type { Failures } from './failures.js';
import type { ReplayResult } from './replay.js';

/**
 * Part of step "repository": each done item's patch commit exists, its ref points at it, its parent is the
 * base the item ran on and it changes only paths under the item's locks (`patch-missing`, `scope`); and the
 * integration chain, walked back from the integration head, is the base plus each non-empty patch in
 * completion order, every item having started on the integration head of its moment (`integration`).
 */

/** Each done item's patch, its scope, and the integration chain built from the patches in completion order. */
export async function checkPatches(
  bundle: AuditBundle,
  replay: ReplayResult,
  store: GitStore,
  refs: RunRefs,
  f: Failures,
  progress: Progress = SILENT,
): Promise<void> {
  const byId = new Map(bundle.items.map((i) => [i.id, i]));
  /** Per completion, its changes (null when the patch could not be read). */
  const changes: Array<TreeChange[] | null> = [];
  progress.phase('patches checked', replay.completions.length);
  for (const done of replay.completions) {
    progress.advance();
    const item = byId.get(done.itemId);
    const id = done.itemId;
    const commit = patchCommitOf(done.resultRef);
    if (!item || !commit) {
      f.add('patch-missing', `item ${id}: result ${JSON.stringify(done.resultRef)} names no patch commit`, { item: id });
      changes.push(null);
      continue;
    }
    let patch;
    try {
      patch = await store.readCommit(commit);
    } catch {
      f.add('patch-missing', `item ${id}: patch commit ${commit} is not in the repository`, { item: id });
      changes.push(null);
      continue;
    }
    const ref = refs.patch(bundle.runId, id);
    const atRef = await store.resolveRef(ref);
    if (atRef !== commit) f.add('patch-missing', `item ${id}: ${ref} points at ${atRef ?? 'nothing'}, not at its patch commit ${commit}`, { item: id });
    const parent = patch.parents[0] ?? null;
    if (parent !== item.base)
      f.add('patch-missing', `item ${id}: patch commit ${commit} has parent ${parent ?? 'none'}, but the item ran on ${String(item.base)}`, { item: id });
    let diff: TreeChange[];
    try {
      diff = await diffTrees(store, parent ? (await store.readCommit(parent)).tree : null, patch.tree);
    } catch (error) {
      f.add('patch-missing', `item ${id}: patch ${commit} cannot be read: ${errorMessage(error)}`, { item: id });
      changes.push(null);
      continue;
    }
    const locks = replay.items.get(id)?.locks ?? item.locks;
    const outside = outOfScope(
      diff.map((c) => c.path),
      locks,
    );
    if (outside.length > 0) {
      f.add(
        'scope',
        `item ${id}: patch ${commit} changes ${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ` (+${outside.length - 5})` : ''} outside its locks [${locks.join(', ')}]`,
        { item: id },
      );
    }
    changes.push(diff);
  }
  await checkIntegration(bundle, replay, changes, store, refs, f);
}

/**
 * The integration head = base + each done item's patch replayed in completion order (an empty patch adds no
 * commit): walk the integration chain back from the head, check that every step changed exactly what its
 * patch changed, that it ends at the base, and that every item started on the integration head of its time.
 */
async function checkIntegration(
  bundle: AuditBundle,
  replay: ReplayResult,
  changes: ReadonlyArray<TreeChange[] | null>,
  store: GitStore,
  refs: RunRefs,
  f: Failures,
): Promise<void> {
  const ref = refs.integration(bundle.runId);
  const atRef = await store.resolveRef(ref);
  // Before any patch is integrated the ref may not exist yet (it follows the state); then the head is the base.
  const notYet = atRef === null && bundle.integrationHead === bundle.base;
  if (atRef !== bundle.integrationHead && !notYet)
    f.add('integration', `${ref} points at ${atRef ?? 'nothing'}, but the run's integration head is ${bundle.integrationHead}`);
  if (changes.some((c) => c === null)) return; // a missing patch is already reported; the replay cannot be checked
  const steps = changes.filter((c) => (c as TreeChange[]).length > 0) as TreeChange[][];
  // chain[k] = the integration head after k non-empty patches; chain[0] must be the base.
  const chain: Oid[] = [bundle.integrationHead];
  try {
    for (let k = 0; k < steps.length; k++) {
      const parent = (await store.readCommit(chain[0] as Oid)).parents[0];
      if (!parent) {
        f.add('integration', `the integration chain from ${bundle.integrationHead} ends after ${k} commits; ${steps.length} patches changed something`);
        return;
      }
      chain.unshift(parent);
    }
  } catch (error) {
    f.add('integration', `the integration chain from ${bundle.integrationHead} cannot be read: ${errorMessage(error)}`);
    return;
  }
  if (chain[0] !== bundle.base) {
    f.add('integration', `${steps.length} patches replayed back from ${bundle.integrationHead} lead to ${chain[0]}, not to the run's base ${bundle.base}`);
    return;
  }
  for (let k = 0; k < steps.length; k++) {
    const problem = await stepProblem(store, chain[k] as Oid, chain[k + 1] as Oid, steps[k] as TreeChange[]);
    if (problem) {
      const itemId = replay.completions.filter((_, j) => (changes[j] as TreeChange[]).length > 0)[k]?.itemId;
      f.add('integration', `integration commit ${chain[k + 1]} (${itemId ?? '?'}) ${problem}`, itemId ? { item: itemId } : {});
    }
  }
  // Each start ran on the integration head of its moment: base + the non-empty patches done before it.
  const nonEmptyBefore: number[] = [0];
  for (const c of changes) nonEmptyBefore.push((nonEmptyBefore[nonEmptyBefore.length - 1] as number) + ((c as TreeChange[]).length > 0 ? 1 : 0));
  for (const s of replay.starts) {
    const expected = chain[nonEmptyBefore[s.doneBefore] as number];
    if (s.base !== expected) {
      f.add('integration', `entry ${s.seq}: item ${s.itemId} started on ${String(s.base)}, but the integration head then was ${expected}`, {
        entry: s.seq,
        item: s.itemId,
      });
    }
  }
}

/** Why commit `next` is not `prev` + `patch` (file level), or undefined when it is exactly that. */
async function stepProblem(store: GitStore, prev: Oid, next: Oid, patch: readonly TreeChange[]): Promise<string | undefined> {
  const prevTree = (await store.readCommit(prev)).tree;
  const nextTree = (await store.readCommit(next)).tree;
  const step = await diffTrees(store, prevTree, nextTree);
  const wanted = new Map(patch.map((c) => [c.path, c.after]));
  for (const c of step) {
    if (!wanted.has(c.path)) return `changes ${c.path}, which its patch does not`;
    if (!sameSide(wanted.get(c.path) ?? null, c.after)) return `sets ${c.path} to other content than its patch`;
  }
  const stepped = new Set(step.map((c) => c.path));
  for (const c of patch) {
    if (stepped.has(c.path)) continue;
    // Not in the step's diff: the previous head must already have held the patch's content there.
    if (!sameSide(c.after, await entryAt(store, nextTree, c.path))) return `does not apply its patch's change to ${c.path}`;
  }
  return undefined;
}

function sameSide(a: { mode: string; oid: string } | null, b: { mode: string; oid: string } | null): boolean {
  return a === null || b === null ? a === b : a.mode === b.mode && a.oid === b.oid;
}

async function entryAt(store: GitStore, tree: Oid, path: string): Promise<TreeEntry | null> {
  const parts = path.split('/');
  let at: Oid = tree;
  for (let i = 0; i < parts.length; i++) {
    const entry = (await store.readTree(at)).find((e) => e.path === parts[i]);
    if (!entry) return null;
    if (i === parts.length - 1) return entry;
    if (entry.type !== 'tree') return null;
    at = entry.oid;
  }
  return null;
}
