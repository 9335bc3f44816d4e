import { lstat, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` for a directory a user named (`--out`, `--bundle-dir`, `agora init <dir>`), which says what
 * is wrong instead of failing obscurely or hanging. Node's own (`mkdir(dir, { recursive: true })`) reads
 * ENOENT from mkdir as "the parent is missing", makes the parent (EEXIST: fine) and tries the child again;
 * a file system that answers ENOENT under a parent that exists (procfs and sysfs: `/proc/x/y`) makes it
 * loop for ever. Here the nearest existing ancestor is found first and must be a directory, and each
 * missing directory is made once, top down: whatever fails is a {@link DirectoryProblem}.
 */

export interface DirectoryProblem {
  /** `not-a-directory`: `at` exists and is no directory; `cannot-create`: `at` cannot be reached or made. */
  kind: 'not-a-directory' | 'cannot-create';
  /** The path on the way that is at fault: the directory asked for, or one above it. */
  at: string;
  /** What is wrong with `at`, as a predicate: "is a file, not a directory", "cannot be created: permission denied". */
  why: string;
  cause?: unknown;
}

/** Builds the error a caller throws for a problem (a typed error naming its own option). */
export type RefuseDirectory = (problem: DirectoryProblem) => Error;

/** The problem as a predicate of `target`: "is a file, not a directory", "lies under /a/f, which is a file, not a directory". */
export function describeDirectoryProblem(target: string, p: DirectoryProblem): string {
  if (p.at === resolve(target)) return p.why;
  return `${p.kind === 'not-a-directory' ? 'lies under' : 'needs'} ${p.at}, which ${p.why}`;
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'a read-only file system',
  ENOSPC: 'the disk is full',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
};

function reasonOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return REASONS[code] ?? (code || String(e));
}

/**
 * The directories missing on the way to `dir`, outermost first; nothing is written. Refuses (through
 * `refuse`) when the nearest existing ancestor, or `dir` itself, is not a directory or cannot be looked at.
 */
export async function missingDirectories(dir: string, refuse: RefuseDirectory): Promise<string[]> {
  const missing: string[] = [];
  for (let at = resolve(dir); ; at = dirname(at)) {
    const info = await stat(at).catch((e: NodeJS.ErrnoException) => {
      // ENOTDIR: a file further up; the walk finds it.
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw refuse({ kind: 'cannot-create', at, why: `cannot be looked at: ${reasonOf(e)}`, cause: e });
    });
    if (info?.isDirectory()) return missing.reverse();
    if (info) throw refuse({ kind: 'not-a-directory', at, why: info.isFile() ? 'is a file, not a directory' : 'is not a directory' });
    if (dirname(at) === at) return missing.reverse(); // a root that does not exist: mkdir says why
    missing.push(at);
  }
}

/** Makes `dir` and the directories missing above it (each with `mode` when given), or refuses, naming the path at fault. */
export async function makeDirectory(dir: string, refuse: RefuseDirectory, mode?: number): Promise<void> {
  for (const at of await missingDirectories(dir, refuse)) {
    try {
      await mkdir(at, mode === undefined ? {} : { mode });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        await existingDirectory(at, refuse); // made meanwhile by someone else, or a broken link
        continue;
      }
      const why =
        code === 'ENOENT'
          ? `cannot be created: ${dirname(at)} takes no new directories (a virtual file system such as /proc or /sys)`
          : `cannot be created: ${reasonOf(e)}`;
      throw refuse({ kind: 'cannot-create', at, why, cause: e });
    }
  }
}

async function existingDirectory(at: string, refuse: RefuseDirectory): Promise<void> {
  const info = await stat(at).catch(() => null);
  if (info?.isDirectory()) return;
  const link = await lstat(at).catch(() => null);
  if (link?.isSymbolicLink()) throw refuse({ kind: 'not-a-directory', at, why: 'is a symbolic link to nothing' });
  throw refuse({ kind: 'not-a-directory', at, why: 'is not a directory' });
}
