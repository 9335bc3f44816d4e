import { lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertEntryName } from '../git/tree-object.js';
import type { TreeChange } from '../git/tree-diff.js';
import type { GitStore } from '../git/types.js';

/**
 * Writes what a remote worker changed (its result's workspace tree against the base) into the local
 * workspace, which holds the base: deletions first, then every added or modified file, symlink or mode.
 * The orchestrator then captures the workspace as after any worker, so the same secret search and
 * write-scope check decide what becomes the patch. Every path component is a valid entry name (never
 * `.git`), and no file is written through a symlink the workspace holds: a result cannot write outside
 * the workspace. A submodule entry is refused.
 */
export async function applyChanges(store: GitStore, dir: string, changes: readonly TreeChange[]): Promise<void> {
  for (const c of changes) for (const part of c.path.split('/')) assertEntryName(part);
  for (const c of changes) if (c.after === null || c.after.mode !== c.before?.mode) await rm(join(dir, c.path), { recursive: true, force: true });
  for (const c of changes) {
    if (c.after === null) continue;
    if (c.after.mode === '160000') throw new Error(`the result adds a submodule at ${c.path}, which a worker cannot produce`);
    const parts = c.path.split('/');
    await ensureDirectories(dir, parts.slice(0, -1));
    const path = join(dir, ...parts);
    await rm(path, { recursive: true, force: true });
    const blob = await store.readBlob(c.after.oid);
    if (c.after.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), path);
    else await writeFile(path, blob, { mode: c.after.mode === '100755' ? 0o777 : 0o666 });
  }
}

/** Makes each directory on the way, replacing a file or symlink found there (never following one). */
async function ensureDirectories(dir: string, parts: readonly string[]): Promise<void> {
  let at = dir;
  for (const part of parts) {
    at = join(at, part);
    const info = await lstat(at).catch(() => null);
    if (info?.isDirectory()) continue;
    if (info) await rm(at, { force: true });
    await mkdir(at);
  }
}
