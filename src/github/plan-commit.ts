import { blobAtPath } from '../git/paths.js';
import type { GitStore, Oid } from '../git/types.js';

/** Reading a plan commit from the mirror: is this a commit that adds or changes the plan file? */

/** The blob id at `path` (slash-separated) in the tree of commit `commit`, or null. */
export async function blobAt(store: GitStore, commit: Oid, path: string): Promise<Oid | null> {
  return blobAtPath(store, (await store.readCommit(commit)).tree, path);
}

export type PlanCommit = { kind: 'plan'; planBlob: Oid } | { kind: 'ignored'; code: 'agora-commit' | 'no-plan-file' | 'plan-unchanged'; why: string };

/** A commit starts a run when it is not Agora's own and its plan file differs from its first parent's. */
export async function classifyCommit(store: GitStore, sha: Oid, planPath: string): Promise<PlanCommit> {
  const commit = await store.readCommit(sha);
  if (/^Agora-Run: /m.test(commit.message)) return { kind: 'ignored', code: 'agora-commit', why: 'a commit written by Agora' };
  const planBlob = await blobAt(store, sha, planPath);
  if (!planBlob) return { kind: 'ignored', code: 'no-plan-file', why: `no ${planPath} in the commit` };
  const parent = commit.parents[0];
  if (parent && (await store.hasObject(parent)) && (await blobAt(store, parent, planPath)) === planBlob) {
    return { kind: 'ignored', code: 'plan-unchanged', why: `${planPath} did not change` };
  }
  return { kind: 'plan', planBlob };
}

/** `plan.json` → `plan`, `ops/nightly.plan.json` → `ops-nightly.plan`: a ref-safe slug of the plan path. */
export function planPathSlug(planPath: string): string {
  return (
    planPath
      .replace(/\.json$/, '')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+/, '') || 'plan'
  );
}

/** The run id of a valid plan at a commit: `<plan.id>-<12 hex>`; the same plan commit always gives the same id. */
export function runIdFor(planId: string, sha: Oid): string {
  return `${planId.slice(0, 80)}-${sha.slice(0, 12)}`;
}

export { trailers } from '../git/trailers.js';
