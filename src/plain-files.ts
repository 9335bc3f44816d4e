import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';

/**
 * Reading files Agora wrote in its own directories (`<gitdir>/agora/…`), where another process may have put
 * something else under the same name: a symbolic link is never followed, a FIFO never waited on, and a file
 * is never read past a bound, so a planted entry is reported, not acted on.
 */

/**
 * Why `dir` is not a directory Agora may read or remove its files in (a symbolic link, even to a directory,
 * would have them read from and removed in another directory), or undefined. `absent` when it is not there.
 */
export async function notARealDirectory(dir: string): Promise<string | undefined | 'absent'> {
  const info = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (info === undefined) return 'absent';
  if (info.isSymbolicLink()) return 'is a symbolic link';
  return info.isDirectory() ? undefined : 'is not a directory';
}

/**
 * The text of the regular file at `path` (at most `maxBytes` of it) and its modification time; otherwise what it is instead (a symbolic
 * link, not a file, too large). O_NOFOLLOW: a link under the name is not followed (ELOOP). O_NONBLOCK: a FIFO
 * under it does not hold the open until someone writes to it. Other errors (ENOENT, EACCES) are thrown.
 */
export async function readPlainFile(path: string, maxBytes: number): Promise<{ text: string; mtimeMs: number } | { problem: string }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ELOOP') return undefined;
    throw e;
  });
  if (handle === undefined) return { problem: 'is a symbolic link' };
  try {
    const info = await handle.stat();
    if (!info.isFile()) return { problem: 'is not a file' };
    if (info.size > maxBytes) return { problem: `is ${info.size} bytes` };
    // The file may have grown since the stat: read into a buffer one byte larger than the bound.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      length += bytesRead;
      if (bytesRead === 0 || length === buffer.length) break;
    }
    if (length > maxBytes) return { problem: `is more than ${maxBytes} bytes` };
    return { text: buffer.toString('utf8', 0, length), mtimeMs: info.mtimeMs };
  } finally {
    await handle.close();
  }
}
