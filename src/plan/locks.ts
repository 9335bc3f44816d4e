import { isMiscasedResourceKey, isResourceKey, resourceKeyProblem } from './resource-keys.js';

/**
 * Lock keys are repository paths: `src/a.ts` locks one file, `src/` (or `src`) a whole subtree. Two keys
 * overlap when they are equal or one is a directory prefix of the other. Locks double as write scopes:
 * a patch may only change paths its item's locks cover, and `.github/workflows/` is writable only when a
 * lock names it (or something under it) explicitly. A key starting with `resource:` names a resource
 * instead (resource-keys.ts): same overlap rule among resource keys, none with paths, no write scope.
 */

const HOW_TO_WRITE =
  'write a repository path relative to the root with "/" between components, like "src/a.ts" (one file) or "src/" (a subtree), or a resource key like "resource:deploy/prod"';

const WORKFLOWS = '.github/workflows';

/** Why `key` is not a usable lock key, or undefined when it is. The message says how to write it. */
export function lockKeyProblem(key: string): string | undefined {
  if (isResourceKey(key) || isMiscasedResourceKey(key)) return resourceKeyProblem(key);
  const shown = JSON.stringify(key);
  if (key.length === 0) return `lock key is empty; ${HOW_TO_WRITE}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return `lock key ${shown} contains a control character; ${HOW_TO_WRITE}`;
  if (key.includes('\\')) return `lock key ${shown} contains a backslash; use "/" between components: ${HOW_TO_WRITE}`;
  if (key.startsWith('/') || /^[A-Za-z]:/.test(key)) {
    return `lock key ${shown} is absolute; ${HOW_TO_WRITE}`;
  }
  const components = normalizeLockKey(key).split('/');
  for (const c of components) {
    if (c === '') return `lock key ${shown} has an empty component ("//"); ${HOW_TO_WRITE}`;
    if (c === '.' || c === '..') return `lock key ${shown} has a "${c}" component; ${HOW_TO_WRITE}`;
    if (c.toLowerCase() === '.git') {
      return `lock key ${shown} names ".git", git's own directory, which no item may lock or write; ${HOW_TO_WRITE}`;
    }
  }
  return undefined;
}

/** The canonical form of a lock key: `src/` and `src` are the same key, `src`. */
export function normalizeLockKey(key: string): string {
  return key.endsWith('/') ? key.slice(0, -1) : key;
}

/** True when `inner` equals `outer` or lies under it at a `/` boundary (both already normalised). */
function covers(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(`${outer}/`);
}

/**
 * True when two lock keys overlap: equal, or one is a directory prefix of the other at a `/` boundary
 * (`src/` overlaps `src/a.ts`; `src/a` does not overlap `src/ab`). Symmetric.
 */
export function locksOverlap(a: string, b: string): boolean {
  const na = normalizeLockKey(a);
  const nb = normalizeLockKey(b);
  return covers(na, nb) || covers(nb, na);
}

/** True when `path` is `.github/workflows` or lies under it (compared without regard to case, to be safe). */
export function isUnderWorkflows(path: string): boolean {
  return covers(WORKFLOWS, normalizeLockKey(path).toLowerCase());
}

/**
 * True when the changed repository path `path` is within the write scope `locks`: some lock equals it or
 * is a subtree above it. Paths under `.github/workflows/` are the exception: they are in scope only
 * through a lock that is `.github/workflows` itself or lies under it — a `.github/` or broader lock does
 * not open workflows.
 */
export function pathInScope(path: string, locks: readonly string[]): boolean {
  const p = normalizeLockKey(path);
  const protectedPath = isUnderWorkflows(p);
  return locks.some((lock) => {
    if (isResourceKey(lock)) return false; // a resource key grants no write scope
    const l = normalizeLockKey(lock);
    if (!covers(l, p)) return false;
    return !protectedPath || isUnderWorkflows(l);
  });
}

/** The paths (deduplicated, in input order) that lie outside the write scope `locks`. */
export function outOfScope(paths: readonly string[], locks: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    if (seen.has(path)) continue;
    seen.add(path);
    if (!pathInScope(path, locks)) out.push(path);
  }
  return out;
}
