/**
 * `agora test` runs a plan on the project's files as they are on disk (sandbox.ts commits them as the
 * run's base), so a fixture's plan reads its matrix files there, under the same rules as the git reader
 * (src/runs/matrix-files.ts): a checked relative path, no symbolic link followed at any level, a file
 * (not a folder or anything else), at most MAX_MATRIX_FILE_BYTES, UTF-8.
 */
import { lstat, readFile } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import { pathInside } from '../path-inside.js';
import { MAX_MATRIX_FILE_BYTES, matrixFilePathProblem, matrixFileRefs, type MatrixFileRead } from '../plan/matrix-file.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** What is at `path` (already checked by matrixFilePathProblem) under `dir`. */
export async function readMatrixFileOnDisk(dir: string, path: string): Promise<MatrixFileRead> {
  const parts = path.split('/');
  for (let i = 0; i < parts.length; i++) {
    const at = pathInside(dir, parts.slice(0, i + 1), 'matrix file path');
    const last = i === parts.length - 1;
    let stat;
    try {
      stat = await lstat(at);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
      return { kind: 'unreadable', why: errorMessage(e) };
    }
    if (stat.isSymbolicLink())
      return { kind: 'not-a-file', what: `a symbolic link${last ? '' : ` (at ${parts.slice(0, i + 1).join('/')})`}, which is not followed` };
    if (!last) {
      if (!stat.isDirectory()) return { kind: 'missing' };
      continue;
    }
    if (stat.isDirectory()) return { kind: 'not-a-file', what: 'a folder' };
    if (!stat.isFile()) return { kind: 'not-a-file', what: 'not a regular file' };
    if (stat.size > MAX_MATRIX_FILE_BYTES) return { kind: 'too-large', bytes: stat.size };
    const bytes = await readFile(at);
    if (bytes.length > MAX_MATRIX_FILE_BYTES) return { kind: 'too-large', bytes: bytes.length };
    try {
      return { kind: 'text', text: decoder.decode(bytes) };
    } catch (e) {
      return { kind: 'unreadable', why: `it is not UTF-8 text (${errorMessage(e)})` };
    }
  }
  return { kind: 'missing' };
}

/** Every acceptable matrix file path of the raw plan, read under `dir` (each once). */
export async function readMatrixFilesOnDisk(dir: string, raw: unknown): Promise<Map<string, MatrixFileRead>> {
  const reads = new Map<string, MatrixFileRead>();
  for (const { path } of matrixFileRefs(raw)) {
    if (reads.has(path) || matrixFilePathProblem(path) !== null) continue;
    reads.set(path, await readMatrixFileOnDisk(dir, path));
  }
  return reads;
}
