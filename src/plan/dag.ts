/**
 * The dependency graph of a plan: an item depends on every id in its `depends_on` and on every item its
 * `needs` bindings read from. Pure functions over the items; ids that name no item are ignored here
 * (validate.ts reports them).
 */
import { AgoraError } from '../errors.js';
import type { WorkItem } from './schema.js';

/** The parts of a work item the graph is made of. */
export type GraphItem = Pick<WorkItem, 'id' | 'depends_on' | 'needs'>;

/**
 * The ids `item` waits for: `depends_on`, then the `from` of each `needs` binding (a binding implies a
 * dependency). Deduplicated, first occurrence kept.
 */
export function dependenciesOf(item: Pick<WorkItem, 'depends_on' | 'needs'>): string[] {
  const out = new Set<string>(item.depends_on);
  for (const binding of Object.values(item.needs ?? {})) out.add(binding.from);
  return [...out];
}

/** Index of each id (first occurrence wins) and, per index, the indices it depends on. */
interface Graph {
  ids: string[];
  adjacency: number[][];
}

function buildGraph(items: readonly GraphItem[]): Graph {
  const index = new Map<string, number>();
  const ids: string[] = [];
  const firsts: GraphItem[] = [];
  for (const item of items) {
    if (index.has(item.id)) continue;
    index.set(item.id, ids.length);
    ids.push(item.id);
    firsts.push(item);
  }
  const adjacency = firsts.map((item) =>
    dependenciesOf(item)
      .map((dep) => index.get(dep))
      .filter((i): i is number => i !== undefined),
  );
  return { ids, adjacency };
}

/**
 * Strongly connected components (Tarjan, iterative so that long chains cannot overflow the stack),
 * restricted to nodes for which `include` is true. Returns the component number of each node (-1 when
 * excluded).
 */
function components(graph: Graph, include: (v: number) => boolean): number[] {
  const n = graph.ids.length;
  const order = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const component = new Array<number>(n).fill(-1);
  const stack: number[] = [];
  let counter = 0;
  let componentCount = 0;
  for (let root = 0; root < n; root++) {
    if (!include(root) || order[root] !== -1) continue;
    const frames: Array<{ v: number; next: number }> = [{ v: root, next: 0 }];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const { v } = frame;
      const edges = graph.adjacency[v]!;
      if (frame.next < edges.length) {
        const w = edges[frame.next++]!;
        if (!include(w)) continue;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          frames.push({ v: w, next: 0 });
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, order[w]!);
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent) low[parent.v] = Math.min(low[parent.v]!, low[v]!);
      if (low[v] === order[v]) {
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          component[w] = componentCount;
        } while (w !== v);
        componentCount++;
      }
    }
  }
  return component;
}

/** Options for {@link findCycles}. */
export interface FindCyclesOptions {
  /** Stop after this many cycles (the number of elementary cycles can grow exponentially). Default 1000. */
  limit?: number;
}

/**
 * Every elementary cycle of the dependency graph (Johnson's algorithm: a depth-first search from each
 * item in plan order, within its strongly connected component), each reported once as the ids closing on
 * themselves, starting at the cycle's earliest item in plan order: `['a', 'b', 'c', 'a']` means a depends
 * on b, b on c, c on a. A self dependency is the cycle `['a', 'a']`. Deterministic: plan order, then
 * dependency order. At most `limit` cycles.
 */
export function findCycles(items: readonly GraphItem[], options: FindCyclesOptions = {}): string[][] {
  const limit = options.limit ?? 1000;
  const graph = buildGraph(items);
  const n = graph.ids.length;
  const cycles: string[][] = [];
  if (limit <= 0) return cycles;

  // Nodes outside every non-trivial component (and without a self loop) are on no cycle: skip them.
  const whole = components(graph, () => true);
  const componentSize = new Map<number, number>();
  for (const c of whole) componentSize.set(c, (componentSize.get(c) ?? 0) + 1);
  const cyclic = (v: number) => componentSize.get(whole[v]!)! > 1 || graph.adjacency[v]!.includes(v);

  const blocked = new Array<boolean>(n).fill(false);
  const blockedBy = Array.from({ length: n }, () => new Set<number>());

  let from = 0;
  while (from < n) {
    // Components among the nodes at or after `from` (Johnson): the earliest node on a cycle there is the
    // next start s, and its cycles stay within its component. Each such pass finds at least one cycle,
    // so the passes cost O((nodes + edges) × (cycles + 1)) in total.
    const first = from;
    const sub = components(graph, (v) => v >= first && cyclic(v));
    const subSize = new Map<number, number>();
    for (let v = first; v < n; v++) if (sub[v]! >= 0) subSize.set(sub[v]!, (subSize.get(sub[v]!) ?? 0) + 1);
    let s = first;
    while (s < n && !(sub[s]! >= 0 && (subSize.get(sub[s]!)! > 1 || graph.adjacency[s]!.includes(s)))) s++;
    if (s >= n) break;
    from = s + 1;
    const inScope = (v: number) => v >= s && sub[v] === sub[s];
    for (let v = s; v < n; v++) {
      blocked[v] = false;
      blockedBy[v]!.clear();
    }
    const path: number[] = [s];
    blocked[s] = true;
    const frames: Array<{ v: number; next: number; found: boolean }> = [{ v: s, next: 0, found: false }];
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const edges = graph.adjacency[frame.v]!;
      if (frame.next < edges.length) {
        const w = edges[frame.next++]!;
        if (!inScope(w)) continue;
        if (w === s) {
          cycles.push([...path, s].map((i) => graph.ids[i]!));
          if (cycles.length >= limit) return cycles;
          frame.found = true;
        } else if (!blocked[w]) {
          blocked[w] = true;
          path.push(w);
          frames.push({ v: w, next: 0, found: false });
        }
        continue;
      }
      // All edges of frame.v explored.
      if (frame.found) {
        unblock(frame.v, blocked, blockedBy);
      } else {
        for (const w of edges) if (inScope(w)) blockedBy[w]!.add(frame.v);
      }
      path.pop();
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent && frame.found) parent.found = true;
    }
  }
  return cycles;
}

function unblock(start: number, blocked: boolean[], blockedBy: Set<number>[]): void {
  const work = [start];
  while (work.length > 0) {
    const u = work.pop()!;
    if (!blocked[u]) continue;
    blocked[u] = false;
    for (const w of blockedBy[u]!) work.push(w);
    blockedBy[u]!.clear();
  }
}

/** Formats a cycle from {@link findCycles} for people: `a → b → c → a`. */
export function formatCycle(cycle: readonly string[]): string {
  return cycle.join(' → ');
}

/**
 * The item ids in an order where every item comes after its dependencies. Stable: among items that are
 * ready at the same time, plan order wins. Dependencies on unknown ids are ignored; of duplicate ids the
 * first counts. Throws AgoraError `plan-cyclic` naming a cycle when there is one.
 */
export function topologicalOrder(items: readonly GraphItem[]): string[] {
  const graph = buildGraph(items);
  const n = graph.ids.length;
  const waitingOn = graph.adjacency.map((deps) => new Set(deps).size);
  const dependents = Array.from({ length: n }, () => [] as number[]);
  graph.adjacency.forEach((deps, v) => {
    for (const d of new Set(deps)) dependents[d]!.push(v);
  });
  const ready = new MinHeap();
  waitingOn.forEach((count, v) => {
    if (count === 0) ready.push(v);
  });
  const order: string[] = [];
  while (ready.size > 0) {
    const v = ready.pop();
    order.push(graph.ids[v]!);
    for (const u of dependents[v]!) {
      waitingOn[u]!--;
      if (waitingOn[u] === 0) ready.push(u);
    }
  }
  if (order.length < n) {
    const [cycle] = findCycles(items, { limit: 1 });
    const shown = cycle ? formatCycle(cycle) : 'unknown';
    throw new AgoraError('plan-cyclic', `the plan has a dependency cycle: ${shown}`, 'remove one dependency of the cycle');
  }
  return order;
}

/** A binary min-heap of numbers (plan indices). */
class MinHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(x: number): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
