/**
 * The lock keys held by running items, indexed so that "does this key overlap a held one?" costs
 * O(depth of the key) instead of O(held keys). Two keys overlap when equal or when one is a prefix of the
 * other at a `/` boundary (keys are normalised: no trailing `/`).
 */
export class HeldLocks {
  /** Held key → how many holders (keys of different items may be equal only transiently; count anyway). */
  private readonly held = new Map<string, number>();
  /** Every proper `/`-prefix of a held key → how many held keys lie under it. */
  private readonly under = new Map<string, number>();

  add(keys: readonly string[]): void {
    for (const key of keys) {
      bump(this.held, key, 1);
      for (const prefix of properPrefixes(key)) bump(this.under, prefix, 1);
    }
  }

  remove(keys: readonly string[]): void {
    for (const key of keys) {
      bump(this.held, key, -1);
      for (const prefix of properPrefixes(key)) bump(this.under, prefix, -1);
    }
  }

  /** True when any of `keys` overlaps a held key. */
  conflicts(keys: readonly string[]): boolean {
    for (const key of keys) {
      if (this.held.has(key) || this.under.has(key)) return true;
      for (const prefix of properPrefixes(key)) if (this.held.has(prefix)) return true;
    }
    return false;
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const next = (map.get(key) ?? 0) + by;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}

/** `a/b/c` → `a`, `a/b`. */
function* properPrefixes(key: string): Generator<string> {
  let i = key.indexOf('/');
  while (i !== -1) {
    yield key.slice(0, i);
    i = key.indexOf('/', i + 1);
  }
}
