import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MATRIX_FILE_BYTES, MAX_RESOLVED_MATRIX_BYTES, matrixFilePathProblem, type MatrixFileRead } from '../../src/plan/matrix-file.js';
import { MAX_RUN_ITEMS, storedPlan } from '../../src/plan/matrix.js';
import { validateFragment } from '../../src/plan/fragment.js';
import type { Plan } from '../../src/plan/schema.js';
import { validatePlanAt } from '../../src/plan/validate-at.js';
import { validatePlan, type ValidationContext } from '../../src/plan/validate.js';

const ctx: ValidationContext = { subagents: {}, shapes: {} };
const WHERE = 'at base commit 0123456789ab';

function plan(entry: unknown, extra: Record<string, unknown> = {}) {
  return {
    id: 'p',
    queue: 'q',
    items: [
      {
        id: 'count',
        executor: 'command',
        inputs: { run: 'wc -w shards/{{matrix.shard}}.txt' },
        depends_on: [],
        resourceLocks: ['counts/{{matrix.shard}}.json'],
        matrix: { shard: entry, ...extra },
      },
      { id: 'reduce', executor: 'command', inputs: { run: 'true' }, depends_on: ['count'], resourceLocks: [] },
    ],
  };
}

const text = (t: string): MatrixFileRead => ({ kind: 'text', text: t });
const at = (raw: unknown, reads: Record<string, MatrixFileRead>) => validatePlanAt(raw, JSON.stringify(raw), ctx, new Map(Object.entries(reads)), WHERE);

function problemsOf(raw: unknown, reads: Record<string, MatrixFileRead>) {
  const { result } = at(raw, reads);
  if (result.ok) throw new Error('expected the plan to be invalid');
  return result.problems;
}

describe('a matrix list read from a file', () => {
  it('refuses a small plan whose references would write more than the limit of values into it, before writing it out', () => {
    // One 100 KB list named by 300 items: a 30 MB plan from a few kilobytes, were it written out.
    const list = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => String(i).padStart(4, '0')));
    expect(list.length).toBeGreaterThan(100_000);
    const raw = {
      id: 'p',
      queue: 'q',
      items: Array.from({ length: 300 }, (_, i) => ({
        id: `i${i}`,
        executor: 'command',
        inputs: { run: 'true' },
        depends_on: [],
        resourceLocks: [],
        matrix: { shard: { file: 'big.json' } },
      })),
    };
    const { result, recordText } = at(raw, { 'big.json': text(list) });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.path).toBe('$.items');
    expect(result.problems[0]!.message).toContain(`over the limit of ${MAX_RESOLVED_MATRIX_BYTES}`);
    expect(recordText.length).toBeLessThan(100_000); // the plan as written, not the resolved one
  });
  it('expands like the same list written inline, and records the values in the plan.json it returns', () => {
    const raw = plan({ file: 'ci/shards.json' }, { lang: ['en'] });
    const { result, recordText } = at(raw, { 'ci/shards.json': text('["01", "02", 3]') });
    const inline = validatePlan(plan(['01', '02', 3], { lang: ['en'] }), ctx);
    expect(result).toEqual(inline);
    if (!result.ok) throw new Error('invalid');
    expect(result.plan.items.map((i) => i.id)).toEqual(['count.shard-01.lang-en', 'count.shard-02.lang-en', 'count.shard-3.lang-en', 'reduce']);
    // The recorded text holds the values (no file reference), so every reader of the stored run expands it alike.
    expect(JSON.parse(recordText).items[0].matrix).toEqual({ shard: ['01', '02', 3], lang: ['en'] });
    expect(storedPlan(JSON.parse(recordText))).toEqual(result.plan);
  });

  it('a plan without a matrix file is recorded exactly as submitted', () => {
    const raw = plan(['01']);
    const submitted = `${JSON.stringify(raw)}\n\n`;
    expect(validatePlanAt(raw, submitted, ctx, new Map(), WHERE).recordText).toBe(submitted);
  });

  it('validatePlan alone (an emitted fragment, a library caller) refuses an unread file reference at the matrix entry', () => {
    const r = validatePlan(plan({ file: 'shards.json' }), ctx);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.path).toBe('$.items[0].matrix.shard');
    expect(r.problems[0]!.message).toContain('"shards.json"');
  });

  it('an item emitted at run time cannot read a matrix file: refused at its matrix entry, saying to write the list', () => {
    const run = validatePlan(plan(['01']), ctx);
    if (!run.ok) throw new Error('invalid');
    const fragment = {
      items: [{ id: 'more', executor: 'command', inputs: { run: 'true' }, matrix: { n: { file: 'n.json' } }, depends_on: [], resourceLocks: [] }],
    };
    const r = validateFragment(fragment, run.plan as Plan, run.plan.items[0]!, ctx);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual(['$.items[0].matrix.n']);
    expect(r.problems[0]!.message).toContain('write the values as a list');
  });

  it('bad files are refused at $.items[i].matrix.<key>, naming the file, where it was read and the fix', () => {
    const cases: Array<[MatrixFileRead, RegExp]> = [
      [{ kind: 'missing' }, /does not exist; commit it/],
      [{ kind: 'not-a-file', what: 'a folder' }, /is a folder, not a file/],
      [{ kind: 'not-a-file', what: 'a symbolic link, which is not followed' }, /symbolic link/],
      [{ kind: 'too-large', bytes: MAX_MATRIX_FILE_BYTES + 1 }, /over the limit of 1048576/],
      [text('["01", '), /is not JSON/],
      [text('{ "shard": ["01"] }'), /holds an object; it must hold a JSON list/],
      [text('[]'), /empty list/],
      [text('["01", {"x": 1}]'), /at \[1\] a value that is not a string, number or boolean/],
    ];
    for (const [read, message] of cases) {
      const problems = problemsOf(plan({ file: 'shards.json' }), { 'shards.json': read });
      expect(problems).toHaveLength(1);
      expect(problems[0]!.path).toBe('$.items[0].matrix.shard');
      expect(problems[0]!.message).toMatch(/^the matrix file "shards.json" \(read at base commit 0123456789ab\)/);
      expect(problems[0]!.message).toMatch(message);
    }
  });

  it('a value from the file that cannot be part of an id is reported at the value, saying which file it came from', () => {
    const problems = problemsOf(plan({ file: 'shards.json' }), { 'shards.json': text('["01", "a b"]') });
    expect(problems.map((p) => p.path)).toEqual(['$.items[0].matrix.shard[1]']);
    expect(problems[0]!.message).toContain('cannot be part of an item id');
    expect(problems[0]!.message).toContain('values from the matrix file "shards.json" at base commit 0123456789ab');
  });

  it('a file that expands past the run item budget is refused at the matrix, nothing expanded', () => {
    const values = Array.from({ length: MAX_RUN_ITEMS + 1 }, (_, i) => i);
    const problems = problemsOf(plan({ file: 'shards.json' }), { 'shards.json': text(JSON.stringify(values)) });
    expect(problems.map((p) => p.path)).toEqual(['$.items[0].matrix']);
    expect(problems[0]!.message).toContain(`over the budget of ${MAX_RUN_ITEMS}`);
    expect(problems[0]!.message).toContain('"shards.json"');
  });

  it('a path that escapes the repository, is absolute or is not a string is refused at "file", and nothing is read', () => {
    for (const [path, message] of [
      ['../secrets.json', /".." segment/],
      ['ci/../../x.json', /".." segment/],
      ['/etc/passwd', /absolute/],
      ['C:/x.json', /absolute/],
      ['ci\\x.json', /backslash/],
      ['.git/config', /\.git/],
      ['ci//x.json', /empty or "\." segment/],
      ['./x.json', /empty or "\." segment/],
      ['', /empty/],
    ] as const) {
      const problems = problemsOf(plan({ file: path }), {});
      expect(problems.map((p) => p.path)).toEqual(['$.items[0].matrix.shard.file']);
      expect(problems[0]!.message).toMatch(message);
    }
    expect(problemsOf(plan({ file: 7 }), {}).map((p) => p.path)).toEqual(['$.items[0].matrix.shard.file']);
    expect(problemsOf(plan({ file: 'a.json', path: 'x' }), { 'a.json': text('["1"]') })[0]!.message).toContain('unknown field "path"');
  });

  it('property: the same file expands the same way every time, as its values written inline do', () => {
    const value = fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,6}$/), fc.integer({ min: 0, max: 999 }));
    fc.assert(
      fc.property(fc.uniqueArray(value, { minLength: 1, maxLength: 20, selector: (v) => String(v) }), (values) => {
        const raw = plan({ file: 'shards.json' });
        const reads = { 'shards.json': text(JSON.stringify(values)) };
        const first = at(raw, reads);
        const again = at(JSON.parse(JSON.stringify(raw)), reads);
        expect(again).toEqual(first);
        expect(first.result).toEqual(validatePlan(plan(values), ctx));
        if (first.result.ok) expect(storedPlan(JSON.parse(first.recordText))).toEqual(first.result.plan);
      }),
      { numRuns: 100 },
    );
  });

  it('property: a path with a ".." segment or a leading "/" is never accepted', () => {
    const segment = fc.stringMatching(/^[a-z.]{0,4}$/);
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 4 }), fc.array(segment, { maxLength: 4 }), (before, after) => {
        expect(matrixFilePathProblem([...before, '..', ...after].join('/'))).not.toBeNull();
        expect(matrixFilePathProblem(`/${[...before, ...after].join('/')}`)).not.toBeNull();
      }),
    );
  });
});
