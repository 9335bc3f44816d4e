import { lstat, mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import { outOfScope } from '../plan/locks.js';

/**
 * The file tools of an agent, acting on the item's workspace only. A path is relative to the workspace
 * root, POSIX-style; it may not leave the workspace (no `..`, no absolute path, no symlink that resolves
 * outside it) and never names `.git`. A write must also stay inside the item's write scope (its
 * resourceLocks). A refusal is a {@link ToolRefusal}: its message goes back to the model, which can try
 * something else; it never ends the attempt.
 */

export class ToolRefusal extends Error {}

const MAX_READ_BYTES = 256 * 1024;
const MAX_LISTED = 500;
/** The longest path a tool takes, in UTF-8 bytes (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/**
 * A refusal for an error the file system gave for `rel` (the path as the model gave it, never the host's),
 * or undefined when the error is not one a path can cause. A model chooses the path, and a commit may hold
 * a loop of links or a file nobody can read: each is the model's to route around, not the attempt's end.
 */
function pathRefusal(e: unknown, rel: string): ToolRefusal | undefined {
  switch ((e as NodeJS.ErrnoException | null)?.code) {
    case 'ENOTDIR':
      return new ToolRefusal(`path ${rel} goes through a file as if it were a directory: it cannot be used`);
    case 'ENAMETOOLONG':
      return new ToolRefusal(
        `path ${rel} is too long for the file system (a name is at most 255 bytes, the whole path with the workspace's own directory at most 4096): it cannot be used`,
      );
    case 'ELOOP':
      return new ToolRefusal(`path ${rel} goes through a loop of symbolic links: it cannot be used`);
    case 'EACCES':
    case 'EPERM':
      return new ToolRefusal(`path ${rel} cannot be used: permission denied`);
    default:
      return undefined;
  }
}

/** Runs `op` on `rel`, turning what the file system says about the path into a refusal that names `rel`. */
async function onPath<T>(rel: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw pathRefusal(e, rel) ?? e;
  }
}

/** `rel` normalised, or a refusal saying why it cannot name a file of the workspace. */
export function workspacePath(rel: unknown): string {
  if (typeof rel !== 'string' || rel.trim() === '') throw new ToolRefusal('path must be a non-empty path relative to the workspace root, like "src/index.ts"');
  if (rel.includes('\0')) throw new ToolRefusal('path must not contain a NUL character');
  const bytes = Buffer.byteLength(rel, 'utf8');
  if (bytes > MAX_PATH_BYTES) throw new ToolRefusal(`path ${rel.slice(0, 80)}… is ${bytes} bytes long; a path is at most ${MAX_PATH_BYTES} bytes`);
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) throw new ToolRefusal(`path ${rel} is absolute: give it relative to the workspace root`);
  const normal = posix.normalize(rel.replace(/\\/g, '/')).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) throw new ToolRefusal(`path ${rel} leaves the workspace: only files under its root can be used`);
  if (normal.split('/').includes('.git')) throw new ToolRefusal(`path ${rel} is inside .git, which the tools never touch`);
  return normal === '' ? '.' : normal;
}

/** The real path of `rel` (or of its deepest existing ancestor), proven to be inside the workspace. */
async function confined(root: string, rel: string): Promise<string> {
  const realRoot = await realpath(root);
  let probe = rel;
  for (;;) {
    try {
      const real = await realpath(join(realRoot, probe));
      if (real !== realRoot && !real.startsWith(realRoot + sep)) {
        throw new ToolRefusal(`path ${rel} resolves outside the workspace (through a symbolic link): it cannot be used`);
      }
      return join(real, posix.relative(probe, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || probe === '.') throw pathRefusal(e, rel) ?? e;
      probe = posix.dirname(probe);
    }
  }
}

export async function readWorkspaceFile(root: string, rawPath: unknown): Promise<string> {
  const rel = workspacePath(rawPath);
  const file = await confined(root, rel);
  let info;
  try {
    info = await lstat(file);
  } catch {
    throw new ToolRefusal(`${rel} does not exist; list_files shows what there is`);
  }
  if (!info.isFile()) throw new ToolRefusal(`${rel} is not a file`);
  if (info.size > MAX_READ_BYTES) throw new ToolRefusal(`${rel} is ${info.size} bytes; read_file returns files up to ${MAX_READ_BYTES} bytes`);
  return onPath(rel, () => readFile(file, 'utf8'));
}

/** Writes `content` to `rawPath`; refused outside `locks` (the item's write scope) with the scope named. */
export async function writeWorkspaceFile(root: string, rawPath: unknown, content: unknown, locks: readonly string[]): Promise<number> {
  const rel = workspacePath(rawPath);
  if (typeof content !== 'string') throw new ToolRefusal('content must be a string: the whole new text of the file');
  if (rel === '.' || outOfScope([rel], locks).length > 0) {
    throw new ToolRefusal(
      locks.length === 0
        ? `refused: ${rel} is outside this item's write scope; the item holds no resourceLocks, so it may read but not write. Report what you would change instead`
        : `refused: ${rel} is outside this item's write scope (${locks.join(', ')}); write only paths under those locks`,
    );
  }
  const file = await confined(root, rel);
  const existing = await lstat(file).catch(() => undefined);
  if (existing && !existing.isFile()) throw new ToolRefusal(`${rel} exists and is not a regular file (a directory or a symbolic link): it cannot be written`);
  await onPath(rel, () => mkdir(dirname(file), { recursive: true }));
  // The directories just made are real ones; prove again that nothing on the way was swapped for a link.
  await confined(root, rel);
  const bytes = Buffer.from(content, 'utf8');
  await onPath(rel, () => writeFile(file, bytes));
  return bytes.length;
}

/** Files under `rawPath` (default the root), depth first, `/` after directories, at most MAX_LISTED; `.git` left out. */
export async function listWorkspaceFiles(root: string, rawPath: unknown): Promise<string[]> {
  const rel = rawPath === undefined ? '.' : workspacePath(rawPath);
  const start = await confined(root, rel);
  const out: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ToolRefusal(`${prefix} is not a directory of the workspace`);
      throw pathRefusal(e, prefix) ?? e;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (out.length >= MAX_LISTED) return;
      if (entry.name === '.git') continue;
      const name = prefix === '.' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) {
        out.push(`${name}/`);
        await walk(join(dir, entry.name), name);
      } else out.push(name);
    }
  };
  await walk(start, rel);
  if (out.length >= MAX_LISTED) out.push(`… (stopped at ${MAX_LISTED} entries: list a subdirectory)`);
  return out;
}
