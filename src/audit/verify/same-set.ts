import { normalizeLockKey } from '../../plan/locks.js';

/** True when two lists of lock keys (or ids) hold the same keys, normalised, whatever their order and repeats. */
export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  // The common case, the same keys in the same order, without building two sets.
  if (a.length === b.length && a.every((x, i) => normalizeLockKey(x) === normalizeLockKey(b[i] as string))) return true;
  const sa = new Set(a.map(normalizeLockKey));
  const sb = new Set(b.map(normalizeLockKey));
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}
