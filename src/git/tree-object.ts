import { AgoraError } from '../errors.js';
import type { Oid, TreeEntry, TreeEntryMode } from './types.js';

/**
 * Tree objects: the modes git writes, the order it keeps entries in, the names it accepts, and the
 * content of a tree (`<mode without leading zeros> <name>\0<20-byte id>` per entry, in that order).
 */

/** The object type a tree entry of this mode points at. */
export function typeForMode(mode: TreeEntryMode): TreeEntry['type'] {
  switch (mode) {
    case '040000':
      return 'tree';
    case '160000':
      return 'commit';
    case '100644':
    case '100755':
    case '120000':
      return 'blob';
    default:
      throw new AgoraError('tree-invalid', `unknown tree entry mode ${String(mode)}`);
  }
}

/** Sorts entries in git's tree order: by name bytes, with a tree's name compared as `name/`. */
export function sortTreeEntries<T extends { path: string; mode: TreeEntryMode }>(entries: T[]): T[] {
  const keyed = entries.map((e) => ({ e, key: Buffer.from(e.mode === '040000' ? `${e.path}/` : e.path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.e);
}

/**
 * Code points HFS+ ignores when it compares names (git's `is_hfs_dotgit` skips the same ones): with them
 * a name can be `.git` on a Mac while it differs from `.git` byte for byte.
 */
const HFS_IGNORED = /[\u200C-\u200F\u202A-\u202E\u206A-\u206F\uFEFF]/g;

/** `name` as HFS+ compares it: without the code points it ignores. */
export function hfsVisible(name: string): string {
  return name.replace(HFS_IGNORED, '');
}

/**
 * Why `name` cannot be a tree entry name, or null when it can. A name is one path component (no `/`, no
 * `\`, no NUL), not `.` or `..`, and not the repository directory under any name a file system may
 * give it: `.git` in any case, on NTFS also with trailing dots or spaces, an alternate data stream
 * (`.git::$INDEX_ALLOCATION`) or the short name `git~1`…`git~9`, on HFS+ also with ignored code points.
 * git refuses these on checkout (the backslash only on Windows) and isomorphic-git when it reads a tree,
 * so the in-process reader and isomorphic-git agree on every tree.
 */
function entryNameProblem(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (name === '' || /[/\\\x00]/.test(name)) return 'a single path component (no /, \\ or NUL)';
  const visible = hfsVisible(name);
  if (visible === '.' || visible === '..') return 'not . or ..';
  const onNtfs = visible
    .split(':')[0]!
    .toLowerCase()
    .replace(/[. ]+$/, '');
  if (onNtfs === '.git' || /^\.?git~[1-9]$/.test(onNtfs)) return 'not .git under any name a file system gives it';
  return null;
}

/** Throws unless `name` is a usable tree entry name (see {@link entryNameProblem}). */
export function assertEntryName(name: string): void {
  const problem = entryNameProblem(name);
  if (problem !== null) {
    throw new AgoraError('tree-invalid', `${JSON.stringify(name)} is not a valid tree entry name: it must be ${problem}`, 'rename the file or directory');
  }
}

/** A tree object's content for `entries` (any order; names and modes already checked). */
export function renderTree(entries: readonly TreeEntry[]): Buffer {
  const parts = sortTreeEntries([...entries]).flatMap((e) => [Buffer.from(`${e.mode.replace(/^0+/, '')} ${e.path}\0`, 'utf8'), Buffer.from(e.oid, 'hex')]);
  return Buffer.concat(parts);
}

/** The modes as git writes them in a tree, and the mode each stands for. */
const MODES: ReadonlyMap<string, TreeEntryMode> = new Map([
  ['40000', '040000'],
  ['100644', '100644'],
  ['100755', '100755'],
  ['120000', '120000'],
  ['160000', '160000'],
]);

/**
 * The entries a tree object's content holds, read in-process, or null when the content is not exactly
 * what {@link renderTree} writes for them (a mode git no longer writes, a name that is not UTF-8 or that
 * git refuses, entries out of order or twice): the caller then reads it through isomorphic-git, which
 * says what is wrong. Accepted only if rendering the entries gives back the same bytes.
 */
export function parseTree(content: Buffer): TreeEntry[] | null {
  const stored = splitTreeEntries(content);
  if (!stored) return null;
  const entries: TreeEntry[] = [];
  const names = new Set<string>();
  for (const e of stored) {
    const mode = MODES.get(e.mode);
    const path = e.name.toString('utf8');
    if (mode === undefined || names.has(path) || entryNameProblem(path) !== null) return null;
    names.add(path);
    entries.push({ mode, path, oid: e.oid, type: typeForMode(mode) });
  }
  // The same bytes back: the entries were in git's order, each name was UTF-8 and each mode as git writes it.
  return renderTree(entries).equals(content) ? entries : null;
}

/**
 * A tree object's entries as stored, split but not interpreted: each mode's text, name's bytes and
 * object id; null when the content is cut short.
 */
export function splitTreeEntries(content: Buffer): Array<{ mode: string; name: Buffer; oid: Oid }> | null {
  const entries: Array<{ mode: string; name: Buffer; oid: Oid }> = [];
  for (let at = 0; at < content.length;) {
    const space = content.indexOf(0x20, at);
    const nul = space < 0 ? -1 : content.indexOf(0, space);
    if (nul < 0 || nul + 21 > content.length) return null;
    entries.push({ mode: content.toString('latin1', at, space), name: content.subarray(space + 1, nul), oid: content.toString('hex', nul + 1, nul + 21) });
    at = nul + 21;
  }
  return entries;
}
