/**
 * Writing a file a user named with `--out`: missing directories are created, the file is written whole
 * (a temporary file renamed over it), and a path that cannot be such a file is a typed error naming it.
 */
import { lstat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { AgoraError, type ErrorCode } from '../errors.js';
import { describeDirectoryProblem, makeDirectory, missingDirectories, type DirectoryProblem } from '../make-directory.js';

const WHY: Record<string, string> = {
  EISDIR: 'is a directory',
  EEXIST: 'lies under a file (a directory on its path is a file)',
  ENOTDIR: 'lies under a file (a directory on its path is a file)',
  EACCES: 'is not writable here (permission denied)',
  EPERM: 'is not writable here (permission denied)',
  EROFS: 'is on a read-only file system',
};

/** Where a file named by `--out` goes: `code` is the refusal's error code, `example` an `--out` value that works. */
export interface OutFile {
  path: string;
  code: ErrorCode;
  example: string;
}

function refusal(out: OutFile, why: string, cause?: unknown): AgoraError {
  return new AgoraError(
    out.code,
    `--out ${out.path} ${why}`,
    `pass the path of a file to write, e.g. --out ${out.example} (missing directories are created)`,
    cause ? { cause } : {},
  );
}

function directoryRefusal(out: OutFile, p: DirectoryProblem): AgoraError {
  const why = p.kind === 'not-a-directory' ? `lies under a file (${p.at} ${p.why})` : `cannot be written: ${describeDirectoryProblem(dirname(out.path), p)}`;
  return refusal(out, why, p.cause);
}

/**
 * Refuses, writing nothing, a path that cannot become the file: an existing directory, device, pipe or
 * socket (the rename would replace it), or a path under something that is not a directory. A regular
 * file or a link there is fine (replaced, not followed).
 */
export async function checkOutFile(out: OutFile): Promise<void> {
  const existing = await lstat(out.path).catch(() => undefined);
  if (existing?.isDirectory()) throw refusal(out, 'is a directory');
  if (existing && !existing.isFile() && !existing.isSymbolicLink())
    throw refusal(out, 'is not a regular file (a device, a pipe or a socket): it would be replaced, not written to');
  await missingDirectories(dirname(out.path), (p) => directoryRefusal(out, p));
}

/** Writes `data` to the file after {@link checkOutFile}'s checks, creating missing directories. */
export async function writeOutFile(out: OutFile, data: string): Promise<void> {
  await checkOutFile(out);
  await makeDirectory(dirname(out.path), (p) => directoryRefusal(out, p));
  try {
    await writeFileAtomic(out.path, data);
  } catch (e) {
    const why = WHY[(e as NodeJS.ErrnoException).code ?? ''];
    if (why) throw refusal(out, why, e);
    throw e;
  }
}
