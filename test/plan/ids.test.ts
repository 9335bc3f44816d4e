import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { idProblem, isSafeId } from '../../src/plan/ids.js';

describe('idProblem', () => {
  it.each(['a', 'fanout-1', 'edit_alpha.v2', 'A9', 'x'.repeat(100), '0.lockx'])('accepts %j', (id) => {
    expect(idProblem(id)).toBeUndefined();
    expect(isSafeId(id)).toBe(true);
  });

  it.each([
    ['', /empty/],
    ['x'.repeat(101), /101 characters.*limit is 100/],
    ['-a', /must start with a letter or digit/],
    ['.a', /must start with a letter or digit/],
    ['a/b', /contains "\/"/],
    ['a b', /contains " "/],
    ['é', /must start with a letter or digit/],
    ['a..b', /contains "\.\."/],
    ['main.lock', /ends in "\.lock"/],
    ['a~1', /contains "~"/],
  ])('rejects %j, saying what is wrong and what is allowed', (id, why) => {
    const problem = idProblem(id);
    expect(problem).toMatch(why);
    expect(problem).toContain('use 1–100 characters from A–Z a–z 0–9 . _ -');
    expect(isSafeId(id)).toBe(false);
  });

  it('agrees with the one-line rule for arbitrary strings', () => {
    const rule = (id: string) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(id) && !id.includes('..') && !id.endsWith('.lock');
    const chars = fc.constantFrom('a', 'Z', '0', '.', '_', '-', '/', ' ', 'k', 'l', 'o', 'c');
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: chars, maxLength: 12 }), fc.constant('x.lock')), (id) => {
        expect(isSafeId(id)).toBe(rule(id));
      }),
    );
  });
});
