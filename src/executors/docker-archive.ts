import { constants, createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';

/**
 * Moves a workspace directory in and out of a container as a tar stream (the Docker archive API).
 *
 * `packWorkspace` never follows symlinks (they travel as symlinks). `extractWorkspace` is the safe
 * inverse: it rejects entries with absolute paths or `..`, never writes through a symlink, extracts into
 * a staging directory first and only then replaces the workspace's contents, so a rejected or broken
 * archive leaves the workspace as it was. It skips (and reports) anything under a top-level `.git`: a
 * repository a worker made at its workspace root stays in its container, because on the host the next
 * `git status` in that directory would run what its config says. The workspace root keeps its own
 * mode whatever the archive's root entry says.
 */

/** Files up to this size are read whole (one read instead of a stream per file: most workspace files are small). */
const SMALL_FILE_BYTES = 1024 * 1024;

/** Who owns the entries in the container (the worker's uid/gid, so that it can write its workspace). */
export interface PackOptions {
  /** Path prefix of every entry, e.g. `workspace/` (the root directory itself becomes an entry `workspace/`). */
  prefix: string;
  uid: number;
  gid: number;
}

/**
 * Streams `dir` as a tar: directories, regular files and symlinks (not followed), modes and mtimes kept,
 * every entry owned by `uid:gid`. Other file types (sockets, fifos, devices) are skipped. The caller must
 * consume or destroy the returned stream.
 */
export function packWorkspace(dir: string, opts: PackOptions): Readable {
  const pack = tar.pack();
  const prefix = opts.prefix === '' || opts.prefix.endsWith('/') ? opts.prefix : `${opts.prefix}/`;
  const owner = { uid: opts.uid, gid: opts.gid };

  async function add(abs: string, rel: string): Promise<void> {
    const st = await lstat(abs);
    const name = prefix + rel;
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      if (name !== '') await entry({ ...owner, name: name.endsWith('/') ? name : `${name}/`, type: 'directory', mode, mtime: st.mtime });
      const children = (await readdir(abs)).sort();
      for (const child of children) await add(join(abs, child), rel === '' ? child : `${rel}/${child}`);
    } else if (st.isSymbolicLink()) {
      await entry({ ...owner, name, type: 'symlink', linkname: await readlink(abs), mode, mtime: st.mtime });
    } else if (st.isFile()) {
      const header = { ...owner, name, type: 'file' as const, size: st.size, mode, mtime: st.mtime };
      if (st.size <= SMALL_FILE_BYTES) {
        const body = await readFile(abs);
        if (body.length !== st.size) throw new Error(`${abs} changed while it was being archived`);
        await new Promise<void>((resolve, reject) => pack.entry(header, body, (err) => (err ? reject(err) : resolve())));
        return;
      }
      let finished!: Promise<void>;
      const sink = await new Promise<ReturnType<typeof pack.entry>>((resolveSink) => {
        finished = new Promise<void>((resolve, reject) => {
          resolveSink(pack.entry(header, (err) => (err ? reject(err) : resolve())));
        });
      });
      for await (const chunk of createReadStream(abs)) {
        if (!sink.write(chunk as Buffer)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
      }
      sink.end(null);
      await finished;
    }
  }

  function entry(header: Partial<tar.Header> & { name: string }): Promise<void> {
    return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
  }

  add(dir, '').then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  // tar-stream's streams are streamx streams; the Docker client wants a Node stream.
  return Readable.from(pack);
}

/** Thrown for an archive entry that could escape the workspace or is otherwise unusable. */
export class UnsafeArchiveError extends Error {
  override readonly name = 'UnsafeArchiveError';
}

/**
 * Normalises an entry name to a path relative to the workspace root: strips `./` and a leading
 * `stripPrefix` segment, returns `''` for the root itself. Throws for absolute names, `..` segments and NUL.
 */
export function safeRelativePath(name: string, stripPrefix = ''): string {
  if (name.includes('\0')) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(name)} contains NUL`);
  if (name.startsWith('/')) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(name)} is an absolute path`);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(name)} contains ..`);
  if (stripPrefix !== '' && segments[0] === stripPrefix) segments.shift();
  return segments.join('/');
}

export interface ExtractOptions {
  /** A first path segment to strip from every entry (e.g. `workspace` when the archive holds `workspace/...`). */
  stripPrefix?: string;
}

/** What an extraction left out, for the attempt's log. */
export interface ExtractResult {
  /** Names of the entries skipped because they lie under a top-level `.git` (as the archive wrote them). */
  skippedGitEntries: string[];
}

/**
 * True for a workspace-relative path that is, or lies under, a top-level `.git` (any letter case: a
 * case-insensitive file system finds `.GIT` as `.git`, and git refuses such paths in trees either way).
 */
export function isUnderTopLevelGit(rel: string): boolean {
  return rel.split('/', 1)[0]!.toLowerCase() === '.git';
}

/**
 * Replaces the contents of `dir` with the archive read from `source` (deletions, new files, modes and
 * symlinks reflected exactly; ownership and hard-link identity are not). The archive is extracted into a
 * staging directory next to `dir` first; only when all of it was read and accepted are `dir`'s children
 * removed and the staged ones moved in. Entries under a top-level `.git` are skipped and listed in the
 * result; the root entry's mode is ignored (`dir` keeps its own). `source` is always consumed or destroyed.
 */
export async function extractWorkspace(source: Readable, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const ended = watchEarlyEnd(source); // before the first await: the stream may fail while the staging directory is made
  const staging = await mkdtemp(join(dirname(dir), `.${basename(dir)}.extract-`));
  try {
    const result = await extractInto(source, ended, staging, opts.stripPrefix ?? '');
    for (const child of await readdir(dir)) await rm(join(dir, child), { recursive: true, force: true });
    for (const child of await readdir(staging)) await rename(join(staging, child), join(dir, child));
    return result;
  } finally {
    source.destroy();
    await rm(staging, { recursive: true, force: true });
  }
}

/** How an archive stream ended before its end, told to whoever asks, however long after it happened. */
interface EarlyEnd {
  onFailure(fail: (e: Error) => void): void;
}

/**
 * Watches `source` for an error, or a close before its end (an HTTP body cut short when the engine goes
 * away closes without an error): either is not a whole archive. Watched from the moment the stream is
 * handed over, so that neither goes unseen (an error with no listener would end the process; a close
 * missed would leave the extraction waiting for data that never comes).
 */
function watchEarlyEnd(source: Readable): EarlyEnd {
  let failure: Error | undefined;
  let listener: ((e: Error) => void) | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    listener?.(failure);
  };
  const closedEarly = () => new Error('the archive stream closed before its end');
  source.on('error', fail);
  source.on('close', () => {
    if (!source.readableEnded) fail(closedEarly());
  });
  if (source.destroyed && !source.readableEnded) fail(source.errored ?? closedEarly());
  return {
    onFailure(l) {
      listener = l;
      if (failure) l(failure);
    },
  };
}

/** Extracts into an empty `root`, skipping the root entry itself and everything under a top-level `.git`. */
async function extractInto(source: Readable, ended: EarlyEnd, root: string, stripPrefix: string): Promise<ExtractResult> {
  const extract = tar.extract();
  const dirModes: Array<[string, number]> = [];
  /** Directories this extraction created: once a directory, a path stays one (replacing it is refused). */
  const made = new Set<string>();
  /** Non-directory paths written so far: only these can need replacing (the staging directory starts empty). */
  const written = new Set<string>();
  const skippedGitEntries: string[] = [];
  /** Small files are buffered and written while the next entries are read (at most WRITE_CONCURRENCY at once). */
  const writes = new WritePool(WRITE_CONCURRENCY);
  ended.onFailure((e) => extract.destroy(e));
  source.pipe(extract);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = safeRelativePath(h.name, stripPrefix);
      const mode = (h.mode ?? 0o644) & 0o777;
      // The root is the host's workspace directory: its mode is the host's, never the archive's.
      if (rel === '') {
        entry.resume();
        continue;
      }
      if (isUnderTopLevelGit(rel)) {
        skippedGitEntries.push(h.name);
        entry.resume();
        continue;
      }
      const target = join(root, rel);
      await ensureParents(root, rel, made);
      if (h.type !== 'directory' && made.has(target)) {
        throw new UnsafeArchiveError(`archive entry ${JSON.stringify(h.name)} would replace a directory`);
      }
      switch (h.type) {
        case 'directory':
          if (written.has(target)) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(h.name)} would replace a file with a directory`);
          await mkdirNoFollow(target, made);
          dirModes.push([target, mode]);
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file':
        case null:
        case undefined:
          if (written.has(target)) {
            await writes.drain();
            await replaceable(target);
          }
          written.add(target);
          if ((h.size ?? 0) <= SMALL_FILE_BYTES) {
            const body = await readAll(entry);
            await writes.add(writeFileNoFollow(target, [body], mode, h.mtime));
          } else {
            await writeFileNoFollow(target, entry, mode, h.mtime);
          }
          break;
        case 'symlink':
          if (written.has(target)) {
            await writes.drain();
            await replaceable(target);
          }
          written.add(target);
          await symlink(h.linkname ?? '', target);
          entry.resume();
          break;
        case 'link': {
          const from = safeRelativePath(h.linkname ?? '', stripPrefix);
          if (isUnderTopLevelGit(from)) {
            // Its content is a skipped entry's: skipped with it.
            skippedGitEntries.push(h.name);
            entry.resume();
            break;
          }
          await ensureParents(root, from, made);
          const fromAbs = join(root, from);
          await writes.drain();
          const st = await lstat(fromAbs).catch(() => undefined);
          if (st === undefined || !st.isFile()) {
            throw new UnsafeArchiveError(
              `archive hard link ${JSON.stringify(h.name)} points at ${JSON.stringify(h.linkname)}, which is not a file extracted before it`,
            );
          }
          if (written.has(target)) await replaceable(target);
          written.add(target);
          await link(fromAbs, target);
          entry.resume();
          break;
        }
        default:
          // Devices, fifos and the like have no place in a workspace: skip them.
          entry.resume();
      }
    }
    await writes.drain();
  } catch (err) {
    extract.destroy();
    source.destroy();
    await writes.settle();
    throw err;
  }
  // Deepest first, so that a read-only directory does not block setting its children.
  for (const [path, mode] of dirModes.reverse()) await chmod(path, mode);
  return { skippedGitEntries };
}

const WRITE_CONCURRENCY = 16;

async function readAll(entry: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Bounded set of file writes in flight; the first failure is rethrown by `add` or `drain`. */
class WritePool {
  private readonly inflight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Starts tracking `write`; waits while the pool is full. */
  async add(write: Promise<void>): Promise<void> {
    const tracked: Promise<void> = write.then(
      () => void this.inflight.delete(tracked),
      (error: unknown) => {
        this.inflight.delete(tracked);
        this.failure ??= { error };
      },
    );
    this.inflight.add(tracked);
    while (this.inflight.size >= this.limit) await Promise.race(this.inflight);
    this.rethrow();
  }

  /** Waits for every write; rethrows the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.rethrow();
  }

  /** Waits for every write, ignoring failures. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  private rethrow(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** Creates the parent directories of `rel` under `root`, refusing to pass through anything but a directory. */
async function ensureParents(root: string, rel: string, made: Set<string>): Promise<void> {
  const segments = rel.split('/').slice(0, -1);
  let current = root;
  for (const segment of segments) {
    current = join(current, segment);
    await mkdirNoFollow(current, made);
  }
}

async function mkdirNoFollow(path: string, made: Set<string>): Promise<void> {
  if (made.has(path)) return;
  made.add(path);
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) {
    await mkdir(path, { mode: 0o700 });
    return;
  }
  if (!st.isDirectory()) throw new UnsafeArchiveError(`archive path ${JSON.stringify(path)} passes through a ${st.isSymbolicLink() ? 'symlink' : 'file'}`);
  // Owner access while extracting; the archived mode is applied at the end.
  await chmod(path, 0o700);
}

/** Removes a file or symlink that a later entry of the same name replaces (tar allows duplicates). */
async function replaceable(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) return;
  if (st.isDirectory()) throw new UnsafeArchiveError(`archive entry ${JSON.stringify(path)} would replace a directory`);
  await rm(path);
}

/** Creates a new file (O_EXCL: never opens an existing path, symlink or not) with the entry's content. */
async function writeFileNoFollow(path: string, content: Iterable<unknown> | AsyncIterable<unknown>, mode: number, mtime: Date | undefined): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for await (const chunk of content) await handle.write(chunk as Uint8Array);
    await handle.chmod(mode);
    if (mtime !== undefined) await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
}
