/**
 * The adapter that reads matrix files (`"matrix": { "shard": { "file": "shards.json" } }`) from git
 * objects at one commit, the run's base: never from a working tree, so the local engine, `serve`, the
 * App and a verifier all see the same values. Only paths that passed matrixFilePathProblem are read; the
 * tree is walked one component at a time, a symlink or submodule is not followed, and a blob's size is
 * checked before it is loaded.
 */
import type { GitStore, Oid } from '../git/types.js';
import { errorMessage } from '../errors.js';
import { MAX_MATRIX_FILE_BYTES, matrixFilePathProblem, matrixFileRefs, type MatrixFileRead } from '../plan/matrix-file.js';
import { validatePlanAt, type ValidatedAt } from '../plan/validate-at.js';
import type { ValidationContext } from '../plan/validate.js';

/** A store that can tell an object's size without loading it (the local and the App's stores can). */
type SizedStore = GitStore & { objectSize?(oid: Oid): Promise<number> };

const decoder = new TextDecoder('utf-8', { fatal: true });

/** What is at `path` in the tree of `commit`. */
export async function readMatrixFile(store: SizedStore, commit: Oid, path: string): Promise<MatrixFileRead> {
  let tree = (await store.readCommit(commit)).tree;
  const parts = path.split('/');
  for (const [i, part] of parts.entries()) {
    const entry = (await store.readTree(tree)).find((e) => e.path === part);
    if (!entry) return { kind: 'missing' };
    const last = i === parts.length - 1;
    if (entry.mode === '120000')
      return { kind: 'not-a-file', what: `a symbolic link${last ? '' : ` (at ${parts.slice(0, i + 1).join('/')})`}, which is not followed` };
    if (entry.type === 'commit') return { kind: 'not-a-file', what: `a submodule${last ? '' : ` (at ${parts.slice(0, i + 1).join('/')})`}` };
    if (!last) {
      if (entry.type !== 'tree') return { kind: 'missing' };
      tree = entry.oid;
      continue;
    }
    if (entry.type !== 'blob') return { kind: 'not-a-file', what: 'a folder' };
    const size = store.objectSize ? await store.objectSize(entry.oid) : null;
    if (size !== null && size > MAX_MATRIX_FILE_BYTES) return { kind: 'too-large', bytes: size };
    const bytes = await store.readBlob(entry.oid);
    if (bytes.length > MAX_MATRIX_FILE_BYTES) return { kind: 'too-large', bytes: bytes.length };
    try {
      return { kind: 'text', text: decoder.decode(bytes) };
    } catch (e) {
      return { kind: 'unreadable', why: `it is not UTF-8 text (${errorMessage(e)})` };
    }
  }
  return { kind: 'missing' };
}

/** Every matrix file of the raw plan whose path is acceptable, read at `commit` (each path once). */
export async function readMatrixFiles(store: SizedStore, commit: Oid, raw: unknown): Promise<Map<string, MatrixFileRead>> {
  const reads = new Map<string, MatrixFileRead>();
  for (const { path } of matrixFileRefs(raw)) {
    if (reads.has(path) || matrixFilePathProblem(path) !== null) continue;
    reads.set(path, await readMatrixFile(store, commit, path));
  }
  return reads;
}

/**
 * The plan validated with its matrix files read at `commit` (the run's base), and the text to record as
 * the run's plan.json (the values in place of the references). `where` describes the commit in messages;
 * by default `at base commit <12 hex>`.
 */
export async function validatePlanAtCommit(
  store: SizedStore,
  commit: Oid,
  raw: unknown,
  planText: string,
  ctx: ValidationContext,
  where = `at base commit ${commit.slice(0, 12)}`,
): Promise<ValidatedAt> {
  return validatePlanAt(raw, planText, ctx, await readMatrixFiles(store, commit, raw), where);
}
