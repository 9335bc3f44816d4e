/**
 * A matrix list read from a file in the repository: `"matrix": { "shard": { "file": "shards.json" } }`,
 * the file holding a JSON list of values. The file is read at the run's base commit by an adapter (which
 * knows git); this module is pure: it finds the references, checks their paths, and, given what the
 * adapter read, puts the values in place of each reference, so that validatePlan and expansion see an
 * ordinary matrix. Every problem names the matrix entry (`$.items[i].matrix.<key>`) and the file.
 */
import { formatJsonPath, type PathSegment } from '../json/path.js';
import type { LocatedProblem } from '../problems/located.js';

/** The largest matrix file read, in bytes: 1 MiB (a list of 10,000 values needs far less). */
export const MAX_MATRIX_FILE_BYTES = 1024 * 1024;
/**
 * The most file text all of a plan's references may put into it, in bytes, each reference counting its
 * file once (a file named by 300 items is written in 300 times): 4 MiB, under the 5 MiB a plan may be.
 * Past it the plan is refused before anything is parsed or written out, so a small plan cannot make its
 * reader build a huge one.
 */
export const MAX_RESOLVED_MATRIX_BYTES = 4 * 1024 * 1024;
/** The longest path a matrix file may have. */
const MAX_PATH_LENGTH = 1024;

/** One `{ "file": … }` in a plan: item index, matrix key, the path as written. */
export interface MatrixFileRef {
  index: number;
  key: string;
  path: string;
}

/** What an adapter found at a checked path. */
export type MatrixFileRead =
  | { kind: 'text'; text: string }
  | { kind: 'missing' }
  | { kind: 'not-a-file'; what: string }
  | { kind: 'too-large'; bytes: number }
  | { kind: 'unreadable'; why: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** True when a matrix entry is a file reference (an object with a `file` field) rather than a list. */
export function isFileEntry(value: unknown): value is { file: unknown } {
  return isRecord(value) && Object.prototype.hasOwnProperty.call(value, 'file');
}

/** Every file reference of the raw plan whose path is a string, in item and key order. */
export function matrixFileRefs(raw: unknown): MatrixFileRef[] {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return [];
  const refs: MatrixFileRef[] = [];
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item) || !isRecord(item.matrix)) return;
    for (const [key, entry] of Object.entries(item.matrix)) {
      if (isFileEntry(entry) && typeof entry.file === 'string') refs.push({ index, key, path: entry.file });
    }
  });
  return refs;
}

/**
 * Why `path` cannot name a matrix file, or null. The path is repository controlled: it must be relative,
 * slash-separated, stay inside the repository (no `..`, no `.` or empty segment), and not reach into `.git`.
 */
export function matrixFilePathProblem(path: string): string | null {
  const rule = 'give a path relative to the repository root, like "shards.json" or "ci/shards.json"';
  if (path.length === 0) return `the path is empty; ${rule}`;
  if (path.length > MAX_PATH_LENGTH) return `the path is ${path.length} characters, over ${MAX_PATH_LENGTH}; ${rule}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return `the path holds a control character; ${rule}`;
  if (path.includes('\\')) return `the path holds a backslash; separate folders with "/"; ${rule}`;
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return `the path is absolute; ${rule}`;
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return `the path has a ".." segment and could leave the repository; ${rule}`;
  if (parts.some((p) => p === '' || p === '.')) return `the path has an empty or "." segment; ${rule}`;
  if (parts.some((p) => p.toLowerCase() === '.git')) return `the path reaches into .git; ${rule}`;
  return null;
}

function fileProblem(ref: MatrixFileRef, where: string, what: string): LocatedProblem {
  return { segments: ['items', ref.index, 'matrix', ref.key], message: `the matrix file ${JSON.stringify(ref.path)} (read ${where}) ${what}` };
}

/** The values of a matrix file, or the problem with them. */
function valuesOf(ref: MatrixFileRef, read: MatrixFileRead, where: string): { values: unknown[] } | { problem: LocatedProblem } {
  const problem = (what: string) => ({ problem: fileProblem(ref, where, what) });
  switch (read.kind) {
    case 'missing':
      return problem('does not exist; commit it, or fix the path (it is relative to the repository root)');
    case 'not-a-file':
      return problem(`is ${read.what}, not a file; point "file" at a JSON file`);
    case 'too-large':
      return problem(`is ${read.bytes} bytes, over the limit of ${MAX_MATRIX_FILE_BYTES}; shorten the list or split the work into several plans`);
    case 'unreadable':
      return problem(`cannot be read: ${read.why}`);
    case 'text':
      break;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(read.text);
  } catch (e) {
    return problem(`is not JSON (${(e as Error).message}); write a JSON list of values, like ["01", "02"]`);
  }
  if (!Array.isArray(parsed)) {
    const found = parsed === null ? 'null' : typeof parsed === 'object' ? 'an object' : `a ${typeof parsed}`;
    return problem(`holds ${found}; it must hold a JSON list of strings, numbers or booleans, like ["01", "02"]`);
  }
  if (parsed.length === 0) return problem('holds an empty list; give at least one value, or remove the matrix');
  const bad = parsed.findIndex((v: unknown) => typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean');
  if (bad >= 0) {
    return problem(`has at [${bad}] a value that is not a string, number or boolean (${JSON.stringify(parsed[bad])?.slice(0, 60)}); list scalar values only`);
  }
  return { values: parsed };
}

/** The problems of the file references that cannot be read at all: a path that is not a string or escapes. */
export function matrixFileRefProblems(raw: unknown): LocatedProblem[] {
  if (!isRecord(raw) || !Array.isArray(raw.items)) return [];
  const out: LocatedProblem[] = [];
  raw.items.forEach((item: unknown, index: number) => {
    if (!isRecord(item) || !isRecord(item.matrix)) return;
    for (const [key, entry] of Object.entries(item.matrix)) {
      if (!isFileEntry(entry)) continue;
      const at: PathSegment[] = ['items', index, 'matrix', key];
      const extra = Object.keys(entry).filter((k) => k !== 'file');
      if (extra.length > 0)
        out.push({ segments: at, message: `unknown field ${JSON.stringify(extra[0])} beside "file"; a file entry is { "file": "<path>" }` });
      if (typeof entry.file !== 'string') {
        out.push({ segments: [...at, 'file'], message: 'must be a string: the path of a JSON file in the repository, like "shards.json"' });
        continue;
      }
      const problem = matrixFilePathProblem(entry.file);
      if (problem) out.push({ segments: [...at, 'file'], message: `${JSON.stringify(entry.file)}: ${problem}` });
    }
  });
  return out;
}

export interface ResolvedMatrixFiles {
  /** The plan with each file reference replaced by its values (the input itself when it has none). */
  raw: unknown;
  problems: LocatedProblem[];
  /** Where each resolved list came from, by the JSON path of its matrix entry: `shards.json at <commit>`. */
  origins: Map<string, string>;
}

/**
 * Puts in place of every `{ "file": … }` of the raw plan the list read from that file. `reads` holds what
 * the adapter found at each checked path (a path with a problem is not read); `where` says where the
 * files were read (`at base commit 1a2b3c…`), for messages. Pure: the same plan and reads give the same
 * result.
 */
export function resolveMatrixFiles(raw: unknown, reads: ReadonlyMap<string, MatrixFileRead>, where: string): ResolvedMatrixFiles {
  const problems = matrixFileRefProblems(raw);
  const origins = new Map<string, string>();
  const refs = matrixFileRefs(raw).filter((r) => matrixFilePathProblem(r.path) === null);
  if (refs.length === 0 || !isRecord(raw) || !Array.isArray(raw.items)) return { raw, problems, origins };
  let total = 0;
  for (const ref of refs) {
    const read = reads.get(ref.path);
    if (read?.kind === 'text') total += Buffer.byteLength(read.text, 'utf8');
  }
  if (total > MAX_RESOLVED_MATRIX_BYTES) {
    problems.push({
      segments: ['items'],
      message: `the plan's ${refs.length} matrix file references would write ${total} bytes of values into it (each reference counts its file once), over the limit of ${MAX_RESOLVED_MATRIX_BYTES} ${where}; name fewer or smaller files, or split the work into several plans`,
    });
    return { raw, problems, origins };
  }
  const items: unknown[] = [...raw.items];
  for (const ref of refs) {
    const read = reads.get(ref.path) ?? { kind: 'unreadable', why: 'it was not read' };
    const got = valuesOf(ref, read, where);
    if ('problem' in got) {
      problems.push(got.problem);
      continue;
    }
    const item = items[ref.index] as Record<string, unknown>;
    items[ref.index] = { ...item, matrix: { ...(item.matrix as Record<string, unknown>), [ref.key]: got.values } };
    origins.set(formatJsonPath(['items', ref.index, 'matrix', ref.key]), `${JSON.stringify(ref.path)} ${where}`);
  }
  return { raw: { ...raw, items }, problems, origins };
}

/**
 * A problem found after resolution at a value that came from a file (`$.items[0].matrix.shard[3]`), or at
 * a matrix holding such values (`$.items[0].matrix`, over the budget), says so: the path points into the
 * plan as resolved, the file is where to fix it.
 */
export function withOrigin(path: string, message: string, origins: ReadonlyMap<string, string>): string {
  const from: string[] = [];
  for (const [entry, origin] of origins) {
    if (path === entry || path.startsWith(`${entry}[`) || entry.startsWith(`${path}.`)) from.push(origin);
  }
  if (from.length === 0) return message;
  return `${message} (values from the matrix file${from.length > 1 ? 's' : ''} ${from.join(', ')})`;
}
