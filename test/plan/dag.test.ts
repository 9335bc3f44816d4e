import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isAgoraError } from '../../src/errors.js';
import { dependenciesOf, findCycles, formatCycle, topologicalOrder, type GraphItem } from '../../src/plan/dag.js';

const item = (id: string, depends_on: string[] = [], needsFrom: string[] = []): GraphItem => ({
  id,
  depends_on,
  needs: needsFrom.length ? Object.fromEntries(needsFrom.map((from, i) => [`in${i}`, { from, select: { kind: 'patch' as const } }])) : undefined,
});

describe('dependenciesOf', () => {
  it('is depends_on then the needs sources, deduplicated in order', () => {
    expect(dependenciesOf(item('x', ['b', 'a', 'b'], ['c', 'a', 'd']))).toEqual(['b', 'a', 'c', 'd']);
    expect(dependenciesOf(item('x'))).toEqual([]);
  });
});

describe('findCycles', () => {
  it('finds nothing in a DAG', () => {
    expect(findCycles([item('a'), item('b', ['a']), item('c', ['a', 'b'])])).toEqual([]);
  });

  it('reports each cycle once, from its earliest item in plan order', () => {
    const items = [item('a', ['b']), item('b', ['c']), item('c', ['a', 'b'])];
    expect(findCycles(items)).toEqual([
      ['a', 'b', 'c', 'a'],
      ['b', 'c', 'b'],
    ]);
    expect(formatCycle(['a', 'b', 'c', 'a'])).toBe('a → b → c → a');
  });

  it('follows needs edges and reports self dependencies', () => {
    expect(findCycles([item('a', [], ['b']), item('b', ['a'])])).toEqual([['a', 'b', 'a']]);
    expect(findCycles([item('a', ['a'])])).toEqual([['a', 'a']]);
  });

  it('ignores unknown ids and honours the limit', () => {
    expect(findCycles([item('a', ['ghost'])])).toEqual([]);
    const complete = ['a', 'b', 'c', 'd', 'e'].map((id, _, all) =>
      item(
        id,
        all.filter((x) => x !== id),
      ),
    );
    expect(findCycles(complete, { limit: 3 })).toHaveLength(3);
  });

  it('survives a 20,000-item chain closed into one cycle (no recursion limit)', () => {
    const n = 20_000;
    const items = Array.from({ length: n }, (_, i) => item(`n${i}`, [`n${(i + 1) % n}`]));
    const cycles = findCycles(items);
    expect(cycles).toHaveLength(1);
    expect(cycles[0]).toHaveLength(n + 1);
  });

  it('equals a brute-force enumeration of elementary cycles on random small graphs', () => {
    const graph = fc
      .integer({ min: 1, max: 6 })
      .chain((n) => fc.array(fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 4 }), { minLength: n, maxLength: n }));
    fc.assert(
      fc.property(graph, (adjacency) => {
        const items = adjacency.map((deps, i) =>
          item(
            `n${i}`,
            deps.map((d) => `n${d}`),
          ),
        );
        const found = findCycles(items).map((c) => c.join(' '));
        expect(new Set(found).size).toBe(found.length);
        expect([...found].sort()).toEqual(bruteForceCycles(adjacency).sort());
      }),
      { numRuns: 500 },
    );
  });
});

/** Every simple cycle, written from its lowest index, found by trying every path. */
function bruteForceCycles(adjacency: number[][]): string[] {
  const out = new Set<string>();
  const walk = (start: number, v: number, path: number[]) => {
    for (const w of new Set(adjacency[v])) {
      if (w === start) out.add([...path, start].map((i) => `n${i}`).join(' '));
      else if (w > start && !path.includes(w)) walk(start, w, [...path, w]);
    }
  };
  adjacency.forEach((_, s) => walk(s, s, [s]));
  return [...out];
}

describe('topologicalOrder', () => {
  it('puts dependencies first and keeps plan order among ready items', () => {
    const items = [item('verify', ['b', 'a']), item('b'), item('a'), item('c', ['a'])];
    expect(topologicalOrder(items)).toEqual(['b', 'a', 'verify', 'c']);
  });

  it('throws plan-cyclic naming the cycle', () => {
    try {
      topologicalOrder([item('x'), item('a', ['b']), item('b', [], ['a'])]);
      expect.unreachable();
    } catch (error) {
      expect(isAgoraError(error) && error.code).toBe('plan-cyclic');
      expect((error as Error).message).toContain('a → b → a');
    }
  });

  it('equals the naive "earliest ready item first" order on random DAGs', () => {
    const dag = fc
      .integer({ min: 1, max: 12 })
      .chain((n) =>
        fc.tuple(
          fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
          fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: n, maxLength: n }),
        ),
      );
    fc.assert(
      fc.property(dag, ([rank, picks]) => {
        const n = rank.length;
        // Item i may depend only on items of lower rank: acyclic by construction, any plan order.
        const deps = picks.map((p, i) => p.map((x) => x % n).filter((j) => rank[j]! < rank[i]!));
        const items = deps.map((d, i) =>
          item(
            `n${i}`,
            d.map((j) => `n${j}`),
          ),
        );
        const order = topologicalOrder(items);
        const done: string[] = [];
        const remaining = items.slice();
        while (remaining.length > 0) {
          const next = remaining.findIndex((it) => it.depends_on.every((d) => done.includes(d)));
          done.push(remaining.splice(next, 1)[0]!.id);
        }
        expect(order).toEqual(done);
      }),
      { numRuns: 500 },
    );
  });
});
