import type { GitStore, Oid } from './types.js';

export type FirstParentChain =
  | { ok: true; chain: Oid[] }
  /** `limit`: more than `max` commits without reaching `base`; `root`: the history ends first. */
  | { ok: false; reason: 'limit' | 'root'; why: string };

/**
 * The commits from `tip` down to `base` (exclusive) along first parents, oldest first; or, when `base` is
 * not reached within `max` commits (or the chain ends first), why not.
 */
export async function firstParentChain(store: GitStore, base: Oid, tip: Oid, max: number): Promise<FirstParentChain> {
  const chain: Oid[] = [];
  let current = tip;
  while (current !== base) {
    if (chain.length >= max) return { ok: false, reason: 'limit', why: `${base} is not among the ${max} first-parent ancestors of ${tip}` };
    const commit = await store.readCommit(current);
    chain.push(current);
    const parent = commit.parents[0];
    if (parent === undefined)
      return { ok: false, reason: 'root', why: `the first-parent history of ${tip} ends at root commit ${current} without reaching ${base}` };
    current = parent;
  }
  return { ok: true, chain: chain.reverse() };
}
