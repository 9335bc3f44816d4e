import { lstat, readdir } from 'node:fs/promises';
import { closeSync, fstatSync, openSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { AgoraError } from '../errors.js';
import { errCode } from './loose-objects.js';
import { assertRefName, isOid } from './ref-names.js';
import type { Oid } from './types.js';

/**
 * Reading refs as git's files backend stores them: a loose file per ref (an object id or `ref: <target>`)
 * and `packed-refs`, the loose file winning. No lock is taken: a writer renames whole files into place.
 */

const MAX_SYMREF_DEPTH = 5;

/** One line of `packed-refs`: a ref and the object it points at. */
interface PackedRef {
  ref: string;
  oid: Oid;
}

/** The parsed `packed-refs` file: header line (if any) and refs in file order, with their peeled lines. */
export interface PackedRefsFile {
  header: string | null;
  refs: Array<PackedRef & { peeled: string | null }>;
}

/**
 * `packed-refs` as last parsed, per repository, with the stat data of the file it came from. Every writer
 * (git, and ref-lock.ts) replaces the file by renaming a new one over it, so an unchanged device, inode,
 * size, mtime and ctime (nanoseconds) mean unchanged content: git validates its own packed-refs cache the
 * same way. A lookup then costs one stat, not a read and parse of the whole file on the thread pool (a
 * file of 90 bytes a ref that grows with every ref packed).
 */
interface PackedRefsSnapshot {
  stamp: string;
  file: PackedRefsFile;
  byRef: Map<string, Oid>;
}
const snapshots = new Map<string, PackedRefsSnapshot>();
/** Repositories whose snapshot is kept (the least recently read goes first). */
const SNAPSHOTS_KEPT = 64;

function stampOf(info: BigIntStats): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

function parsePackedRefs(text: string): PackedRefsFile {
  const file: PackedRefsFile = { header: null, refs: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      file.header ??= line;
      continue;
    }
    if (line.startsWith('^')) {
      const last = file.refs[file.refs.length - 1];
      if (last) last.peeled = line;
      continue;
    }
    const space = line.indexOf(' ');
    const oid = line.slice(0, space);
    const ref = line.slice(space + 1);
    if (space > 0 && isOid(oid)) file.refs.push({ ref, oid, peeled: null });
  }
  return file;
}

/**
 * The repository's `packed-refs`, parsed (empty when there is none). Read synchronously: the stat that
 * validates the snapshot is one call, and a miss reads the file through the descriptor it was stat'ed by,
 * so the content and the stamp it is kept under belong to the same file.
 */
function packedRefsSnapshot(gitdir: string): PackedRefsSnapshot | null {
  const path = join(gitdir, 'packed-refs');
  const info = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (info === undefined) {
    snapshots.delete(gitdir);
    return null;
  }
  const kept = snapshots.get(gitdir);
  if (kept?.stamp === stampOf(info)) {
    snapshots.delete(gitdir); // most recently read goes last
    snapshots.set(gitdir, kept);
    return kept;
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return packedRefsSnapshot(gitdir); // removed since the stat
    throw e;
  }
  let snapshot: PackedRefsSnapshot;
  try {
    const stamp = stampOf(fstatSync(fd, { bigint: true }));
    const file = parsePackedRefs(readFileSync(fd, 'utf8'));
    const byRef = new Map<string, Oid>();
    for (const r of file.refs) if (!byRef.has(r.ref)) byRef.set(r.ref, r.oid); // the first line of a name, as a scan finds it
    snapshot = { stamp, file, byRef };
  } finally {
    closeSync(fd);
  }
  snapshots.delete(gitdir);
  snapshots.set(gitdir, snapshot);
  if (snapshots.size > SNAPSHOTS_KEPT) snapshots.delete(snapshots.keys().next().value!);
  return snapshot;
}

/** The parsed `packed-refs` file (a fresh copy: callers may change it). */
export async function readPackedRefsFile(gitdir: string): Promise<PackedRefsFile> {
  const snapshot = packedRefsSnapshot(gitdir);
  if (snapshot === null) return { header: null, refs: [] };
  return { header: snapshot.file.header, refs: snapshot.file.refs.map((r) => ({ ...r })) };
}

export async function readPackedRef(gitdir: string, ref: string): Promise<Oid | null> {
  return packedRefsSnapshot(gitdir)?.byRef.get(ref) ?? null;
}

/** The content of a loose ref file: an object id, a symbolic target, or nothing (no such file). */
type LooseRef = { oid: Oid } | { symref: string } | null;

async function readLooseRef(gitdir: string, ref: string): Promise<LooseRef> {
  const path = join(gitdir, ref);
  let text: string;
  try {
    text = readFileSync(path, 'utf8'); // a few bytes: one synchronous call, cheaper than the thread pool's round trips
  } catch (e) {
    const code = errCode(e);
    // A directory of that name (refs/x when refs/x/y exists) or a missing parent is simply "no ref".
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return null;
    throw e;
  }
  const value = text.trim();
  if (value.startsWith('ref: ')) return { symref: value.slice(5).trim() };
  if (isOid(value)) return { oid: value };
  throw new AgoraError(
    'ref-corrupt',
    `${path} does not hold an object id (${JSON.stringify(value.slice(0, 60))})`,
    `check that no other tool writes this ref in place; restore it with \`git update-ref ${ref} <commit>\``,
  );
}

/**
 * The object `ref` points at (loose ref first, then `packed-refs`; symbolic refs such as `HEAD` are
 * followed), or null when it does not exist. Reads the loose file before `packed-refs`: `git pack-refs`
 * writes `packed-refs` before it prunes the loose file, so a ref being packed is never missed.
 */
export async function readRef(gitdir: string, ref: string): Promise<Oid | null> {
  let name = ref;
  for (let depth = 0; depth <= MAX_SYMREF_DEPTH; depth++) {
    if (name !== 'HEAD') assertRefName(name);
    const loose = await readLooseRef(gitdir, name);
    if (loose === null) return name === 'HEAD' ? null : readPackedRef(gitdir, name);
    if ('oid' in loose) return loose.oid;
    name = loose.symref;
  }
  throw new AgoraError('ref-corrupt', `${ref} is a chain of more than ${MAX_SYMREF_DEPTH} symbolic refs`, 'point it at a commit or a branch directly');
}

async function walkLooseRefs(gitdir: string, dir: string, out: Map<string, Oid>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(gitdir, dir));
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw e;
  }
  for (const name of names) {
    if (name.endsWith('.lock')) continue;
    const ref = `${dir}/${name}`;
    let info;
    try {
      info = await lstat(join(gitdir, ref));
    } catch (e) {
      if (errCode(e) === 'ENOENT') continue; // deleted meanwhile
      throw e;
    }
    if (info.isDirectory()) {
      await walkLooseRefs(gitdir, ref, out);
    } else if (info.isFile()) {
      const loose = await readLooseRef(gitdir, ref);
      if (loose && 'oid' in loose) out.set(ref, loose.oid);
    }
  }
}

/** Every ref whose name starts with `prefix` (loose and packed; loose wins), sorted by name (bytewise). */
export async function listRefs(gitdir: string, prefix: string): Promise<Array<{ ref: string; oid: Oid }>> {
  // Walk from the deepest complete directory of the prefix, then filter by the full prefix.
  const slash = prefix.lastIndexOf('/');
  const base = slash > 0 ? prefix.slice(0, slash) : 'refs';
  const loose = new Map<string, Oid>();
  if (base === 'refs' || base.startsWith('refs/')) await walkLooseRefs(gitdir, base, loose);
  const packed = packedRefsSnapshot(gitdir)?.file.refs ?? [];
  const all = new Map<string, Oid>();
  for (const r of packed) if (r.ref.startsWith(prefix)) all.set(r.ref, r.oid);
  for (const [ref, oid] of loose) if (ref.startsWith(prefix)) all.set(ref, oid);
  return [...all]
    .map(([ref, oid]) => ({ ref, oid, key: Buffer.from(ref) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ ref, oid }) => ({ ref, oid }));
}

/** The current value of `ref` as an update must see it: the loose file, else `packed-refs`. */
export async function currentValue(gitdir: string, ref: string): Promise<Oid | null> {
  const loose = await readLooseRef(gitdir, ref);
  if (loose === null) return readPackedRef(gitdir, ref);
  if ('oid' in loose) return loose.oid;
  throw new AgoraError('ref-symbolic', `${ref} is a symbolic ref (to ${loose.symref}); Agora updates only direct refs`, `update ${loose.symref} instead`);
}
