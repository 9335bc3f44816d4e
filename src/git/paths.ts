import type { GitStore, Oid } from './types.js';

/** The blob id at `path` (slash-separated) in `tree`, or null when there is none or it is not a file. */
export async function blobAtPath(store: GitStore, tree: Oid, path: string): Promise<Oid | null> {
  let at = tree;
  const parts = path.split('/').filter(Boolean);
  for (const [i, part] of parts.entries()) {
    const entry = (await store.readTree(at)).find((e) => e.path === part);
    if (!entry) return null;
    if (i === parts.length - 1) return entry.type === 'blob' ? entry.oid : null;
    if (entry.type !== 'tree') return null;
    at = entry.oid;
  }
  return null;
}
