/**
 * Writing a file a user named with `--out`: missing directories are created, the file is written whole
 * (a temporary file renamed over it), and a path that cannot be such a file is a typed error naming it.
 */
import { lstat, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { AgoraError, type ErrorCode } from '../errors.js';

const WHY: Record<string, string> = {
  EISDIR: 'is a directory',
  EEXIST: 'lies under a file (a directory on its path is a file)',
  ENOTDIR: 'lies under a file (a directory on its path is a file)',
  EACCES: 'is not writable here (permission denied)',
  EPERM: 'is not writable here (permission denied)',
  EROFS: 'is on a read-only file system',
};

/**
 * Writes `data` to `path`. An existing path must be a regular file or a link (replaced, not followed):
 * a device, a pipe or a socket would be replaced by the rename, so it is refused. Every refusal is
 * `code`, with `example` (an `--out` value that works) in its hint.
 */
export async function writeOutFile(path: string, data: string, code: ErrorCode, example: string): Promise<void> {
  const refuse = (why: string, cause?: unknown) =>
    new AgoraError(
      code,
      `--out ${path} ${why}`,
      `pass the path of a file to write, e.g. --out ${example} (missing directories are created)`,
      cause ? { cause } : {},
    );
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw refuse('is a directory');
  if (existing && !existing.isFile() && !existing.isSymbolicLink())
    throw refuse('is not a regular file (a device, a pipe or a socket): it would be replaced, not written to');
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, data);
  } catch (e) {
    const why = WHY[(e as NodeJS.ErrnoException).code ?? ''];
    if (why) throw refuse(why, e);
    throw e;
  }
}
