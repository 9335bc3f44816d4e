import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Problem } from '../../src/errors.js';
import { combinationCount, expandPlan, MAX_RUN_ITEMS, storedPlan } from '../../src/plan/matrix.js';
import type { Plan } from '../../src/plan/schema.js';
import { validatePlan, type ValidationContext } from '../../src/plan/validate.js';

const ctx: ValidationContext = {
  subagents: { count: { inputSchema: { type: 'object', required: ['shard'], properties: { shard: { type: 'integer' } } } } },
  shapes: {},
};

const cmd = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  executor: 'command',
  inputs: { run: 'true' },
  depends_on: [] as string[],
  resourceLocks: [] as string[],
  ...extra,
});

function valid(raw: unknown): Plan {
  const r = validatePlan(raw, ctx);
  if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 1));
  return r.plan;
}

function problems(raw: unknown): Problem[] {
  const r = validatePlan(raw, ctx);
  if (r.ok) throw new Error('expected the plan to be invalid');
  return r.problems;
}

describe('matrix expansion', () => {
  it('gives one ordinary item per combination, ids derived from the values, templates filled, dependents waiting for all', () => {
    const plan = valid({
      id: 'p',
      queue: 'q',
      items: [
        cmd('prep'),
        cmd('count-words', {
          matrix: { shard: ['01', '02'], lang: ['en', 'de'] },
          inputs: { run: 'wc -w shards/{{matrix.shard}}.{{ matrix.lang }}.txt > counts/{{matrix.shard}}-{{matrix.lang}}' },
          depends_on: ['prep'],
          resourceLocks: ['counts/{{matrix.shard}}-{{matrix.lang}}'],
        }),
        cmd('reduce', { depends_on: ['count-words'], resourceLocks: ['totals.json'] }),
      ],
    });
    expect(plan.items.map((i) => i.id)).toEqual([
      'prep',
      'count-words.shard-01.lang-en',
      'count-words.shard-01.lang-de',
      'count-words.shard-02.lang-en',
      'count-words.shard-02.lang-de',
      'reduce',
    ]);
    const one = plan.items[2]!;
    expect(one).toEqual({
      id: 'count-words.shard-01.lang-de',
      executor: 'command',
      inputs: { run: 'wc -w shards/01.de.txt > counts/01-de' },
      depends_on: ['prep'],
      resourceLocks: ['counts/01-de'],
    });
    expect(plan.items[5]!.depends_on).toEqual(plan.items.slice(1, 5).map((i) => i.id));
  });

  it('keeps the type of a value that fills a whole string, so a subagent schema asking for an integer is met', () => {
    const plan = valid({
      id: 'p',
      queue: 'q',
      items: [{ ...cmd('map'), executor: 'dispatch', inputs: { subagent: 'count', workerInput: { shard: '{{matrix.shard}}' } }, matrix: { shard: [1, 2] } }],
    });
    expect(plan.items.map((i) => i.inputs.workerInput)).toEqual([{ shard: 1 }, { shard: 2 }]);
    // The same template with a value the schema refuses is refused at the input's path.
    const bad = problems({
      id: 'p',
      queue: 'q',
      items: [{ ...cmd('map'), executor: 'dispatch', inputs: { subagent: 'count', workerInput: { shard: '{{matrix.shard}}' } }, matrix: { shard: [1, 'x'] } }],
    });
    expect(bad.map((p) => p.path)).toEqual(['$.items[0].inputs.workerInput.shard']);
  });

  it('a stored plan reads back as the same items (what the state store and the verifier see)', () => {
    const raw = { id: 'p', queue: 'q', items: [cmd('m', { matrix: { n: [1, 2, 3] }, resourceLocks: ['out/{{matrix.n}}'] }), cmd('z', { depends_on: ['m'] })] };
    expect(storedPlan(JSON.parse(JSON.stringify(raw)))).toEqual(valid(raw));
  });

  it('a plan without a matrix is returned unchanged (the same object)', () => {
    const plan = valid({ id: 'p', queue: 'q', items: [cmd('a'), cmd('b', { depends_on: ['a'] })] });
    expect(expandPlan(plan)).toBe(plan);
  });
});

describe('matrix validation names the matrix entry', () => {
  const run = (item: Record<string, unknown>, ...rest: Array<Record<string, unknown>>) => ({ id: 'p', queue: 'q', items: [item, ...rest] });

  it('a value that makes a lock template an invalid key: at the value, with the key it made and the fix', () => {
    const ps = problems(run(cmd('m', { matrix: { dir: ['a', '.git', 'b'] }, resourceLocks: ['{{matrix.dir}}/out'] })));
    expect(ps).toHaveLength(1);
    expect(ps[0]!.path).toBe('$.items[0].matrix.dir[1]');
    expect(ps[0]!.message).toContain('the key ".git/out"');
    expect(ps[0]!.message).toContain('change the value or the template');
  });

  it('a lock template that is invalid whatever the values: at the template', () => {
    const ps = problems(run(cmd('m', { matrix: { n: ['1'] }, resourceLocks: ['/abs/{{matrix.n}}'] })));
    expect(ps.map((p) => p.path)).toEqual(['$.items[0].resourceLocks[0]']);
    expect(ps[0]!.message).toContain('is absolute');
  });

  it('values that cannot be part of an id, repeated values, bad key names, an empty matrix, unknown template keys', () => {
    const ps = problems(
      run(
        cmd('m', { matrix: { shard: ['01', 'a/b', '01'], 'bad key': ['x'] }, inputs: { run: 'echo {{matrix.nope}}' } }),
        cmd('e', { matrix: {} }),
        cmd('plain', { resourceLocks: ['out/{{matrix.n}}'] }),
      ),
    );
    expect(ps.map((p) => p.path)).toEqual([
      '$.items[0].matrix["bad key"]',
      '$.items[0].matrix.shard[1]',
      '$.items[0].matrix.shard[2]',
      '$.items[1].matrix',
      '$.items[2].resourceLocks[0]',
    ]);
    expect(ps[2]!.message).toContain('is also at $.items[0].matrix.shard[0]');
    expect(ps[4]!.message).toContain('the item has no matrix');
    const unknownKey = problems(run(cmd('m', { matrix: { shard: ['01'] }, inputs: { run: 'echo {{matrix.nope}}' } })));
    expect(unknownKey).toEqual([
      { path: '$.items[0].inputs.run', message: expect.stringContaining('names no key of the item\'s matrix; its keys are "shard"') },
    ]);
  });

  it('a combination whose id another item already has', () => {
    const ps = problems(run(cmd('m', { matrix: { n: ['1', '2'] } }), cmd('m.n-2')));
    expect(ps).toEqual([{ path: '$.items[0].matrix', message: expect.stringContaining('"m.n-2", which $.items[1] already has') }]);
  });

  it('two values that differ only in letter case (their ids would collide on a case-insensitive file system)', () => {
    const ps = problems(run(cmd('m', { matrix: { v: ['p', 'P'] } })));
    expect(ps).toEqual([
      {
        path: '$.items[0].matrix',
        message: expect.stringContaining(
          'the combination v=P gets the id "m.v-P", which the combination v=p of $.items[0] already has (ids are compared ignoring letter case)',
        ),
      },
    ]);
  });

  it('a binding cannot read a matrix item', () => {
    const ps = problems(run(cmd('m', { matrix: { n: ['1'] } }), cmd('r', { needs: { x: { from: 'm', select: { kind: 'patch' } } } })));
    expect(ps.map((p) => p.path)).toEqual(['$.items[1].needs.x.from']);
  });

  it('a matrix over the run item budget is refused at the matrix, without listing its combinations', () => {
    const big = Array.from({ length: 101 }, (_, i) => String(i));
    const ps = problems(run(cmd('m', { matrix: { a: big, b: big } })));
    expect(ps).toEqual([
      {
        path: '$.items[0].matrix',
        message: expect.stringContaining(
          `expands to 10201 items (101 a × 101 b); with the rest of the plan the run would hold 10201 items, over the budget of ${MAX_RUN_ITEMS}`,
        ),
      },
    ]);
    // Exactly the budget is fine.
    expect(valid(run(cmd('m', { matrix: { a: big.slice(0, 100), b: big.slice(0, 100) } }))).items).toHaveLength(MAX_RUN_ITEMS);
  });
});

describe('matrix properties', () => {
  const arbMatrix = fc
    .uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/), { minLength: 1, maxLength: 3 })
    .chain((keys) =>
      fc.tuple(
        ...keys.map((k) =>
          fc.tuple(
            fc.constant(k),
            fc.uniqueArray(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/), fc.nat(999)), {
              minLength: 1,
              maxLength: 4,
              // Ids are compared ignoring letter case: values that differ only in case are a plan error (tested above), not a matrix.
              selector: (v) => String(v).toLowerCase(),
            }),
          ),
        ),
      ),
    )
    .map((entries) => Object.fromEntries(entries));

  it('a matrix expands the same way every time, into exactly its combinations, with unique ids', () => {
    fc.assert(
      fc.property(arbMatrix, (matrix) => {
        const raw = {
          id: 'p',
          queue: 'q',
          items: [
            cmd('m', {
              matrix,
              resourceLocks: [
                Object.keys(matrix)
                  .map((k) => `{{matrix.${k}}}`)
                  .join('/'),
              ],
            }),
            cmd('after', { depends_on: ['m'] }),
          ],
        };
        const first = valid(raw);
        const again = valid(JSON.parse(JSON.stringify(raw)));
        expect(again).toEqual(first);
        expect(storedPlan(JSON.parse(JSON.stringify(raw)))).toEqual(first);
        const expanded = first.items.slice(0, -1);
        expect(expanded).toHaveLength(combinationCount(matrix));
        expect(new Set(expanded.map((i) => i.id)).size).toBe(expanded.length);
        expect(new Set(expanded.map((i) => i.resourceLocks[0])).size).toBe(expanded.length);
        expect(first.items.at(-1)!.depends_on).toEqual(expanded.map((i) => i.id));
      }),
      { numRuns: 200 },
    );
  });
});
