/**
 * Problems located by JSON path: each problem keeps its path as segments until the end, so a report of
 * many problems (a plan's, a config's) is sorted the way a person reads the document, parents first.
 */
import type { Problem } from '../errors.js';
import { formatJsonPath, type PathSegment } from '../json/path.js';

export { formatJsonPath, type PathSegment };

/** A problem still carrying its path as segments (for sorting). */
export interface LocatedProblem {
  segments: PathSegment[];
  message: string;
}

/** Orders paths segment by segment: indices numerically, keys by code point, parents first. */
export function comparePaths(a: readonly PathSegment[], b: readonly PathSegment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Sorted by path (stable for equal paths), duplicates dropped, formatted. */
export function finishProblems(located: readonly LocatedProblem[]): Problem[] {
  const sorted = located.map((p, i) => ({ p, i })).sort((x, y) => comparePaths(x.p.segments, y.p.segments) || x.i - y.i);
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const { p } of sorted) {
    const path = formatJsonPath(p.segments);
    const key = `${path}\u0000${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message: p.message });
  }
  return out;
}
