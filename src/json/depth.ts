import { formatJsonPath, type PathSegment } from './path.js';

/**
 * How deeply a parsed JSON value nests objects and arrays. Whatever later walks a document recursively
 * (canonical JSON for hashing, schema validation, rendering) overflows the stack somewhere past a few
 * thousand levels, so documents are refused at a documented depth before anything walks them. The walk
 * here is iterative: it cannot overflow itself.
 */

/**
 * The path of the first object or array (in document order) nested deeper than `limit` levels (a
 * top-level object is level 1, an object or array among its members level 2, …), or undefined when none
 * is. Strings, numbers, booleans and null add no level.
 */
export function pathBeyondDepth(value: unknown, limit: number): string | undefined {
  interface Node {
    value: unknown;
    depth: number;
    parent: Node | null;
    segment: PathSegment | null;
  }
  const pending: Node[] = [{ value, depth: 1, parent: null, segment: null }];
  while (pending.length > 0) {
    const node = pending.pop()!;
    if (node.depth > limit) return formatJsonPath(segmentsOf(node));
    const v = node.value;
    if (v === null || typeof v !== 'object') continue;
    const children: Array<[PathSegment, unknown]> = Array.isArray(v) ? v.map((c, i) => [i, c]) : Object.entries(v);
    for (let i = children.length - 1; i >= 0; i--) {
      const [segment, child] = children[i]!;
      if (child !== null && typeof child === 'object') pending.push({ value: child, depth: node.depth + 1, parent: node, segment });
    }
  }
  return undefined;

  function segmentsOf(node: Node): PathSegment[] {
    const out: PathSegment[] = [];
    for (let n: Node | null = node; n && n.segment !== null; n = n.parent) out.push(n.segment);
    return out.reverse();
  }
}
