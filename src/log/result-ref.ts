import type { Oid } from '../git/types.js';

/** A done item's logged `resultRef` names its patch commit as `git:<40 hex>`: → the commit id; anything else → null. */
export function patchCommitOf(resultRef: string | null | undefined): Oid | null {
  const m = /^git:([0-9a-f]{40})$/.exec(resultRef ?? '');
  return m ? (m[1] as string) : null;
}

/** The `resultRef` a done item logs for its patch commit. */
export function resultRefFor(commit: Oid): string {
  return `git:${commit}`;
}
