import { describe, expect, it } from 'vitest';
import { validateFragment } from '../../src/plan/fragment.js';
import type { Plan, WorkItem } from '../../src/plan/schema.js';
import { validatePlan, type ValidationContext } from '../../src/plan/validate.js';

const ctx: ValidationContext = { subagents: {}, shapes: {} };
const cmd = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  executor: 'command',
  inputs: { run: 'true' },
  depends_on: [],
  resourceLocks: [],
  ...extra,
});
const runPlan: Plan = { id: 'p', queue: 'default', items: [cmd('prepare'), cmd('fan', { resourceLocks: ['out/', 'resource:db/stage'] })] as WorkItem[] };
const emitter = runPlan.items[1]!;

function problems(raw: unknown): string[] {
  const r = validateFragment(raw, runPlan, emitter, ctx);
  if (r.ok) throw new Error('expected problems');
  return r.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('an emitted fragment', () => {
  it('is checked like plan items: depends on the run and on itself, matrices expand, locks within the emitter', () => {
    const r = validateFragment(
      {
        items: [
          cmd('shard', { matrix: { n: [1, 2] }, resourceLocks: ['out/{{matrix.n}}.txt'], depends_on: ['prepare'] }),
          cmd('sum', { depends_on: ['shard', 'fan'], resourceLocks: ['out/total', 'resource:db/stage/x'] }),
        ],
      },
      runPlan,
      emitter,
      ctx,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.items.map((i) => [i.id, i.depends_on, i.resourceLocks])).toEqual([
      ['shard.n-1', ['prepare'], ['out/1.txt']],
      ['shard.n-2', ['prepare'], ['out/2.txt']],
      ['sum', ['shard.n-1', 'shard.n-2', 'fan'], ['out/total', 'resource:db/stage/x']],
    ]);
  });

  it('names every problem by its path in the file', () => {
    expect(problems([cmd('a')])).toEqual(['$: must be an object {"items": [ … ]} listing the items to add, each written as in plan.json']);
    expect(problems({ items: [], extra: 1 })).toEqual(['$.extra: unknown field "extra"; items.json holds only "items"']);
    const found = problems({
      items: [
        cmd('prepare'),
        cmd('b', { depends_on: ['c'] }),
        cmd('c', { depends_on: ['b'] }),
        cmd('d', { executor: 'shell' }),
        cmd('e', { resourceLocks: ['src/', 'resource:db/prod'] }),
      ],
    });
    expect(found).toEqual(
      expect.arrayContaining([
        `$.items[0].id: duplicate item id "prepare": the run's item "prepare" already has it; give every item its own id`,
        expect.stringMatching(/^\$\.items\[\d\]\.depends_on\[0\]: .*cycle.*b.*c/),
        expect.stringMatching(/^\$\.items\[3\]\.executor: .*"shell"/),
        expect.stringMatching(
          /^\$\.items\[4\]\.resourceLocks\[0\]: lock "src\/" is not within the locks of the emitting item fan \("out\/", "resource:db\/stage"\)/,
        ),
        expect.stringMatching(/^\$\.items\[4\]\.resourceLocks\[1\]: lock "resource:db\/prod" is not within the locks/),
      ]),
    );
  });
});

describe('max_items in the plan', () => {
  it("may not be below the plan's own item count (matrices expanded)", () => {
    const r = validatePlan({ id: 'p', queue: 'q', max_items: 2, items: [cmd('m', { matrix: { k: ['a', 'b', 'c'] } })] }, ctx);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      {
        path: '$.max_items',
        message: 'is 2, but the plan itself holds 3 items (matrices expanded): raise "max_items" to at least 3 plus what its items may emit, or remove it',
      },
    ]);
    expect(validatePlan({ id: 'p', queue: 'q', max_items: 3, max_hops: 0, items: [cmd('m', { matrix: { k: ['a', 'b', 'c'] } })] }, ctx).ok).toBe(true);
  });
});
