import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, findDuplicateKey } from '../../src/json/duplicate-keys.js';
import { formatJsonPath, type PathSegment } from '../../src/json/path.js';

/** A JSON tree whose objects are member lists, so they can repeat a key (what JSON.stringify cannot write). */
type Tree = null | number | string | boolean | Tree[] | { members: Array<[string, Tree]> };

function write(t: Tree, space: boolean): string {
  const sep = space ? ', ' : ',';
  if (Array.isArray(t)) return `[${t.map((x) => write(x, space)).join(sep)}]`;
  if (t !== null && typeof t === 'object') return `{${t.members.map(([k, v]) => `${JSON.stringify(k)}${space ? ': ' : ':'}${write(v, space)}`).join(sep)}}`;
  return JSON.stringify(t);
}

/** The path of the first member (in document order) whose key its object already had; the reference answer. */
function firstDuplicate(t: Tree, at: PathSegment[] = []): PathSegment[] | undefined {
  if (Array.isArray(t)) {
    for (const [i, x] of t.entries()) {
      const d = firstDuplicate(x, [...at, i]);
      if (d) return d;
    }
    return undefined;
  }
  if (t === null || typeof t !== 'object') return undefined;
  const seen = new Set<string>();
  for (const [k, v] of t.members) {
    if (seen.has(k)) return [...at, k];
    seen.add(k);
    const d = firstDuplicate(v, [...at, k]);
    if (d) return d;
  }
  return undefined;
}

const key = fc.constantFrom('a', 'b', 'run', 'a b', '"', '\\', '{', '}', '[', ',', ':', 'é', '\u0000');
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.integer(),
    fc.constantFrom('x', '}', '{"a":1}', '\\"', '[', ','),
    fc.boolean(),
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie('tree')), { maxLength: 4 }).map((members) => ({ members })),
  ),
}));

describe('findDuplicateKey', () => {
  it('finds exactly the first repeated key of any document, with its JSON path, whatever the strings hold', () => {
    fc.assert(
      fc.property(tree, fc.boolean(), (t, space) => {
        const text = write(t, space);
        JSON.parse(text); // valid JSON, duplicates or not
        const expected = firstDuplicate(t);
        const found = findDuplicateKey(text);
        expect(found?.path).toBe(expected ? formatJsonPath(expected) : undefined);
        if (found) expect(found.segments).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('compares keys unescaped, and locates both occurrences by line and column', () => {
    const text = '{\n  "items": [\n    {"id": "a"},\n    {"id": "b", "run": "echo safe",\n     "\\u0072un": "rm -rf /"}\n  ]\n}';
    expect(findDuplicateKey(text)).toEqual({
      key: 'run',
      segments: ['items', 1, 'run'],
      path: '$.items[1].run',
      first: { offset: text.indexOf('"run"'), line: 4, column: 17 },
      again: { offset: text.indexOf('"\\u0072un"'), line: 5, column: 6 },
    });
    // The same key in sibling or nested objects is not a duplicate.
    expect(findDuplicateKey('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}')).toBeUndefined();
    expect(findDuplicateKey('{"a": 1, "A": 2}')).toBeUndefined();
    expect(findDuplicateKey('{"a b": {"x": 1, "x": 2}}')?.path).toBe('$["a b"].x');
  });

  it('is iterative: 100,000 levels of nesting do not overflow the stack', () => {
    const deep = `${'{"a":['.repeat(100_000)}{"k":1,"k":2}${']}'.repeat(100_000)}`;
    expect(findDuplicateKey(deep)?.segments).toHaveLength(200_001);
  });

  it('the error names the source, the key, its path and the fix', () => {
    const d = findDuplicateKey('{"run": "a",\n "run": "b"}')!;
    const e = new DuplicateKeyError('plan-duplicate-key', 'plan.json', d, 'remove one of them');
    expect(e).toMatchObject({ code: 'plan-duplicate-key', source: 'plan.json', hint: 'remove one of them', name: 'DuplicateKeyError' });
    expect(e.problems).toEqual([
      {
        path: '$.run',
        message: 'the key "run" appears twice in one object (line 1, column 2 and line 2, column 2); JSON parsers disagree on which one counts',
      },
    ]);
    expect(e.message).toBe(`plan.json: $.run: ${e.problems[0]!.message}`);
  });
});
