import { mkdir, writeFile } from 'node:fs/promises';
import type { RunState } from '../engine/types.js';
import type { GitStore, Oid } from '../git/types.js';
import { blobAtPath } from '../git/paths.js';
import { commitChanges } from '../git/tree-diff.js';
import { pathInside } from '../path-inside.js';
import type { WorkItem } from '../plan/schema.js';
import { patchCommitOf } from '../log/result-ref.js';

/**
 * `needs`: named inputs from upstream items, resolved when the item starts. Each binding becomes a file
 * in a directory outside the workspace (so it never becomes part of the patch) and an entry of
 * `$AGORA_NEEDS`: `{ "<name>": { "from", "kind", "commit", "path", "file" } }`.
 * - `{ "kind": "patch" }`: the upstream's patch commit; `file` holds its changes as `path status blob`
 *   lines (one per changed path: A/M/D and the new blob id) — the content is in the repository by id.
 * - `{ "kind": "output", "path": "p" }`: the file `p` as the upstream's patch commit has it.
 * A binding name that would resolve outside `dir` throws PathOutsideDirectoryError before anything is
 * read or written.
 */

export interface ResolvedNeed {
  from: string;
  kind: 'patch' | 'output';
  commit: Oid;
  path?: string;
  file: string;
}

export class NeedUnavailable extends Error {}

export async function resolveNeeds(store: GitStore, item: WorkItem, state: RunState, dir: string): Promise<Record<string, ResolvedNeed> | undefined> {
  if (!item.needs || Object.keys(item.needs).length === 0) return undefined;
  // Validation keeps binding names to the id rule; this proves it where the names become paths.
  const files = new Map(Object.keys(item.needs).map((name) => [name, pathInside(dir, name, 'needs binding name')]));
  await mkdir(dir, { recursive: true });
  const out: Record<string, ResolvedNeed> = {};
  for (const [name, binding] of Object.entries(item.needs)) {
    const upstream = state.items[binding.from];
    const commit = upstream?.status === 'done' ? patchCommitOf(upstream.resultRef) : null;
    if (!commit) {
      throw new NeedUnavailable(`needs.${name}: ${binding.from} has no result (it is ${upstream?.status ?? 'unknown'})`);
    }
    const file = files.get(name)!;
    if (binding.select.kind === 'patch') {
      const changes = await commitChanges(store, commit);
      const lines = changes.map((c) => `${c.path}\t${c.before ? (c.after ? 'M' : 'D') : 'A'}\t${c.after?.oid ?? '-'}`);
      await writeFile(file, lines.length ? `${lines.join('\n')}\n` : '');
      out[name] = { from: binding.from, kind: 'patch', commit, file };
    } else {
      const blob = await blobAtPath(store, (await store.readCommit(commit)).tree, binding.select.path);
      if (!blob) throw new NeedUnavailable(`needs.${name}: ${binding.from}'s result has no file ${binding.select.path}`);
      await writeFile(file, await store.readBlob(blob));
      out[name] = { from: binding.from, kind: 'output', commit, path: binding.select.path, file };
    }
  }
  return out;
}
