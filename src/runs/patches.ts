import type { TreeChange } from '../git/tree-diff.js';
import { commitChanges } from '../git/tree-diff.js';
import { applyTreeChanges } from '../git/tree-edit.js';
import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid } from '../git/types.js';
import { outOfScope } from '../plan/locks.js';
import type { ScopePolicy } from '../plan/schema.js';
import { canonicalJson } from '../log/canonical-json.js';
import { trailers } from '../git/trailers.js';

/**
 * Patches and integration. A patch commit holds the workspace after the worker (parent = the base it ran
 * on); its changes must stay inside the item's write scope (its locks). Integration replays a patch's
 * changed paths onto the integration head by tree surgery: concurrent items hold disjoint scopes, so
 * their patches commute and integration cannot conflict.
 */

export type PatchOutcome = { ok: true; commit: Oid; changes: TreeChange[]; discarded: string[] } | { ok: false; reason: string; offending: string[] };

export interface PatchInput {
  runId: string;
  itemId: string;
  attempt: number;
  base: Oid;
  /** The tree captured from the workspace. */
  tree: Oid;
  /** Its changes against the base's tree. */
  changes: TreeChange[];
  locks: readonly string[];
  policy: ScopePolicy;
  now: number;
  /** The item's output (an agent's final answer and transcript summary), kept in the patch commit's `Agora-Output` trailer. */
  output?: unknown;
}

/**
 * Checks the scope and writes the patch commit. `patches/<run>/<item>` is pointed at it only when the
 * state records the item done, in the same transaction (driver.ts): a patch no state names is no ref's.
 */
export async function recordPatch(store: GitStore, p: PatchInput): Promise<PatchOutcome> {
  const offending = outOfScope(
    p.changes.map((c) => c.path),
    p.locks,
  );
  let tree = p.tree;
  let changes = p.changes;
  if (offending.length > 0) {
    if (p.policy === 'fail') return { ok: false, reason: scopeReason(p.locks, offending), offending };
    const drop = new Set(offending);
    tree = await applyTreeChanges(
      store,
      p.tree,
      p.changes.filter((c) => drop.has(c.path)).map((c) => ({ path: c.path, entry: c.before })),
    );
    changes = p.changes.filter((c) => !drop.has(c.path));
  }
  const who = agoraIdentity(p.now);
  const commit = await store.writeCommit({
    tree,
    parents: [p.base],
    message:
      `agora: patch ${p.runId}/${p.itemId} (attempt ${p.attempt}, ${plural(changes.length, 'path')} changed)\n\n` +
      (offending.length > 0 ? `Discarded out-of-scope changes: ${offending.join(', ')}\n\n` : '') +
      `Agora-Run: ${p.runId}\nAgora-Item: ${p.itemId}\nAgora-Attempt: ${p.attempt}\n` +
      // Canonical JSON escapes every newline, so the output stays one trailer line whatever it holds.
      (p.output !== undefined ? `Agora-Output: ${canonicalJson(p.output)}\n` : ''),
    author: who,
    committer: who,
  });
  return { ok: true, commit, changes, discarded: offending };
}

/**
 * Replays `patch` (its diff against its parent) onto `head`. Returns the new integration head, or
 * `head` itself when the patch changes nothing (an empty patch adds no integration commit).
 */
export async function integratePatch(store: GitStore, args: { head: Oid; patch: Oid; runId: string; itemId: string; now: number }): Promise<Oid> {
  const changes = await commitChanges(store, args.patch);
  if (changes.length === 0) return args.head;
  const head = await store.readCommit(args.head);
  const tree = await applyTreeChanges(
    store,
    head.tree,
    changes.map((c) => ({ path: c.path, entry: c.after })),
  );
  const who = agoraIdentity(args.now);
  return store.writeCommit({
    tree,
    parents: [args.head],
    message:
      `${args.itemId}: ${plural(changes.length, 'path')} changed by agora run ${args.runId}\n\n` +
      changes.map((c) => `  ${c.before ? (c.after ? 'M' : 'D') : 'A'} ${c.path}`).join('\n') +
      `\n\nAgora-Run: ${args.runId}\nAgora-Item: ${args.itemId}\nAgora-Patch: ${args.patch}\n`,
    author: who,
    committer: who,
  });
}

/** The output a patch commit carries (its `Agora-Output` trailer), or undefined when it has none. */
export function patchOutput(message: string): unknown {
  const text = trailers(message).get('Agora-Output');
  return text === undefined ? undefined : (JSON.parse(text) as unknown);
}

function scopeReason(locks: readonly string[], offending: readonly string[]): string {
  const shown = offending.slice(0, 10).join(', ') + (offending.length > 10 ? `, … (${offending.length} in all)` : '');
  if (locks.length === 0) {
    return `wrote outside its write scope: the item holds no resourceLocks, so it is read-only, but it changed ${shown}; add a lock covering these paths, or set "scope": "discard" to drop such changes`;
  }
  return `wrote outside its write scope (${locks.join(', ')}): ${shown}; add a lock covering these paths, or set "scope": "discard" to drop such changes`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
