/**
 * The workspace's in-process method (workspace.ts; used without the git CLI or with AGORA_GIT_CLI=0):
 * a tree written into a directory, and a directory captured back into a tree by walking it, with
 * isomorphic-git for `.gitignore` and the repository's objects.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import fs, { type Stats } from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { limiter } from './limiter.js';
import type { LocalGitStore } from './local-store.js';
import { assertEntryName } from './tree-object.js';
import { applyTreeChanges, type PathChange } from './tree-edit.js';
import type { Oid, TreeEntryMode } from './types.js';

/**
 * Writes `tree` into the empty directory `dir`. Entry names come from the repository: each must be a
 * single path component other than `.`, `..` and `.git` (as git requires on checkout), so no write
 * leaves `dir` or plants a repository in it.
 */
export async function writeTreeInto(store: LocalGitStore, tree: Oid, dir: string): Promise<void> {
  const limit = limiter(32);
  const walk = async (treeOid: Oid, into: string): Promise<void> => {
    const entries = await limit(() => store.readTree(treeOid));
    for (const e of entries) assertEntryName(e.path);
    await Promise.all(
      entries.map(async (e) => {
        const path = join(into, e.path);
        if (e.type === 'tree') {
          await mkdir(path);
          await walk(e.oid, path);
        } else if (e.type === 'commit') {
          await mkdir(path); // a submodule: git leaves an empty directory
        } else {
          await limit(async () => {
            const blob = await store.readBlob(e.oid);
            if (e.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), path);
            else await writeFile(path, blob, { mode: e.mode === '100755' ? 0o777 : 0o666 });
          });
        }
      }),
    );
  };
  await walk(tree, dir);
}

/** Every non-tree path of `tree` with its entry, and every directory path on the way. */
async function flattenTree(store: LocalGitStore, tree: Oid): Promise<{ files: Map<string, { mode: TreeEntryMode; oid: Oid }>; dirs: Set<string> }> {
  const files = new Map<string, { mode: TreeEntryMode; oid: Oid }>();
  const dirs = new Set<string>();
  const limit = limiter(16);
  const walk = async (oid: Oid, prefix: string): Promise<void> => {
    const entries = await limit(() => store.readTree(oid));
    const subtrees: Array<Promise<void>> = [];
    for (const e of entries) {
      const path = prefix ? `${prefix}/${e.path}` : e.path;
      if (e.type === 'tree') {
        dirs.add(path);
        subtrees.push(walk(e.oid, path));
      } else {
        files.set(path, { mode: e.mode, oid: e.oid });
      }
    }
    await Promise.all(subtrees);
  };
  await walk(tree, '');
  return { files, dirs };
}

function blobId(content: Uint8Array): Oid {
  return createHash('sha1').update(`blob ${content.byteLength}\0`).update(content).digest('hex');
}

/**
 * What `git add` records for the file or link at `path` with these stats, as a change against `base`
 * (its entry in the base tree, if any): null where it records the same; otherwise its blob, written.
 * A link's target is read as bytes, as git stores it.
 */
async function recordedChange(
  store: LocalGitStore,
  dir: string,
  path: string,
  info: Stats,
  base: { mode: string; oid: Oid } | undefined,
): Promise<PathChange | null> {
  const abs = join(dir, path);
  const content = info.isSymbolicLink() ? await readlink(abs, { encoding: 'buffer' }) : await readFile(abs);
  const mode = modeOf(info);
  const oid = blobId(content);
  if (base?.mode === mode && base.oid === oid) return null;
  await store.writeBlob(content);
  return { path, entry: { mode, oid } };
}

/** The mode git records for a file with these stats (the owner's exec bit decides 100755). */
function modeOf(info: Stats): TreeEntryMode {
  if (info.isSymbolicLink()) return '120000';
  return info.mode & 0o100 ? '100755' : '100644';
}

/**
 * Captures by walking the directory: tracked paths (those in the base tree) are always considered;
 * untracked ones only when not ignored (`.gitignore` files in the workspace and `info/exclude`, through
 * isomorphic-git's `isIgnored`); an ignored untracked directory is not entered. Unchanged files are hashed
 * but not rewritten; the new tree is built by tree surgery on the base.
 */
export async function captureByWalk(store: LocalGitStore, dir: string, baseTree: Oid): Promise<Oid> {
  const base = await flattenTree(store, baseTree);
  const seen = new Set<string>();
  const changes: PathChange[] = [];
  const limit = limiter(32);
  const ignored = (path: string): Promise<boolean> => git.isIgnored({ fs, dir, gitdir: store.gitdir, filepath: path });

  const visit = async (path: string, info: Stats): Promise<void> => {
    const tracked = base.files.get(path);
    if (info.isDirectory()) {
      if (tracked?.mode === '160000') {
        seen.add(path); // a submodule's directory: the gitlink stays as it was
        return;
      }
      if (!base.dirs.has(path) && (await ignored(`${path}/`))) return;
      await walkDir(path);
      return;
    }
    if (!info.isFile() && !info.isSymbolicLink()) return; // sockets, fifos: git skips them too
    if (!tracked && (await ignored(path))) return;
    seen.add(path);
    const change = await limit(() => recordedChange(store, dir, path, info, tracked));
    if (change) changes.push(change);
  };

  const walkDir = async (path: string): Promise<void> => {
    const abs = path ? join(dir, path) : dir;
    const names = await limit(() => readdir(abs));
    await Promise.all(
      names
        .filter((name) => name !== '.git')
        .map(async (name) => {
          const child = path ? `${path}/${name}` : name;
          const info = await limit(() => lstat(join(dir, child)));
          await visit(child, info);
        }),
    );
  };

  await walkDir('');
  for (const path of base.files.keys()) if (!seen.has(path)) changes.push({ path, entry: null });
  return applyTreeChanges(store, baseTree, changes);
}

/** Larger files are left to git, which streams them, rather than read whole into memory here. */
const LARGEST_HASHED_IN_PROCESS = 64 * 1024 * 1024;

/**
 * `baseTree` with the tracked `paths` recorded as they are in `dir` now (a missing one deleted): what
 * `git add` of just those paths records where no `.gitattributes` applies. `entries` gives each path's
 * entry in the base, as `git ls-tree` prints it (`<mode> <type> <oid>`). Null where a path is neither a
 * file nor a link (nor gone), or is too large to hash in memory: git records it instead.
 */
export async function captureTracked(
  store: LocalGitStore,
  dir: string,
  baseTree: Oid,
  entries: ReadonlyMap<string, string>,
  paths: readonly string[],
): Promise<Oid | null> {
  const changes: PathChange[] = [];
  for (const path of paths) {
    const abs = join(dir, path);
    const info = await lstat(abs).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (info === null) {
      changes.push({ path, entry: null });
      continue;
    }
    if ((!info.isFile() && !info.isSymbolicLink()) || info.size > LARGEST_HASHED_IN_PROCESS) return null;
    const [mode = '', , oid = ''] = (entries.get(path) ?? '').split(' ');
    const change = await recordedChange(store, dir, path, info, { mode, oid });
    if (change) changes.push(change);
  }
  return changes.length === 0 ? baseTree : applyTreeChanges(store, baseTree, changes);
}
