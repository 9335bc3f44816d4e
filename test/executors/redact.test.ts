import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor, redactAll } from '../../src/executors/redact.js';

/** Reference: the obvious quadratic scan (leftmost position, longest secret there). */
function naiveRedact(text: string, secrets: string[]): string {
  const needles = [...new Set(secrets.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
  let out = '';
  let i = 0;
  while (i < text.length) {
    const hit = needles.find((n) => text.startsWith(n, i));
    if (hit) {
      out += '***';
      i += hit.length;
    } else {
      out += text[i];
      i++;
    }
  }
  return out;
}

function pushInPieces(text: string, secrets: string[], cuts: number[]): string {
  const r = createRedactor(secrets);
  let out = '';
  let prev = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    out += r.push(text.slice(prev, cut));
    prev = cut;
  }
  return out + r.push(text.slice(prev)) + r.flush();
}

describe('createRedactor', () => {
  it('replaces every occurrence of every secret', () => {
    expect(redactAll('token=hunter2 and again hunter2; key=s3cr3t!', ['hunter2', 's3cr3t!'])).toBe(
      'token=*** and again ***; key=***',
    );
  });

  it('ignores empty and too short values, redacts length 3', () => {
    expect(redactAll('a ab abc abcd', ['', 'a', 'ab'])).toBe('a ab abc abcd');
    expect(redactAll('a ab abc abcd', ['abc'])).toBe('a ab *** ***d');
  });

  it('prefers the longest secret at a position', () => {
    expect(redactAll('xxabcdefxx', ['abc', 'abcdef'])).toBe('xx***xx');
    expect(redactAll('xxabcdexx', ['abc', 'abcdef'])).toBe('xx***dexx');
  });

  it('catches a secret split at every possible point of a chunk boundary', () => {
    const secret = 'ghp_Zq8vT3xYw2Lk';
    const text = `before ${secret} middle ${secret}${secret} after`;
    const expected = 'before *** middle ****** after';
    for (let cut = 0; cut <= text.length; cut++) {
      expect(pushInPieces(text, [secret], [cut]), `cut at ${cut}`).toBe(expected);
      for (let cut2 = cut; cut2 <= text.length; cut2 += 3) {
        expect(pushInPieces(text, [secret], [cut, cut2]), `cuts at ${cut}, ${cut2}`).toBe(expected);
      }
    }
  });

  it('emits one character at a time without leaking any part of a secret', () => {
    const secret = 'p@ssw0rd-123';
    const text = `x${secret}y${secret}`;
    const r = createRedactor([secret]);
    let out = '';
    for (const ch of text) {
      out += r.push(ch);
      // At no point does emitted text contain the secret's first 3 characters followed by the 4th.
      expect(out).not.toContain(secret.slice(0, 4));
    }
    out += r.flush();
    expect(out).toBe('x***y***');
  });

  it('holds back only what could still become a secret', () => {
    const r = createRedactor(['abcdef', 'xyz']);
    expect(r.push('0123456789')).toBe('0123456789');
    expect(r.push('--abc')).toBe('--');
    expect(r.push('de')).toBe('');
    expect(r.push('!')).toBe('abcde!');
    // 'xyz' is complete but 'abcdef' could still start inside the held part: wait.
    expect(r.push('xyzab')).toBe('***');
    expect(r.flush()).toBe('ab');
  });

  it('waits for a longer secret that a complete shorter one begins', () => {
    const r = createRedactor(['abc', 'abcdef']);
    expect(r.push('xxabc')).toBe('xx');
    expect(r.push('def')).toBe('***');
    expect(r.push('abc')).toBe('');
    expect(r.push(' ')).toBe('*** ');
  });

  it('does not split a surrogate pair between outputs', () => {
    const r = createRedactor(['\ude00abc']);
    // 'x', '\ud83d', '\ude00', 'a': the held part starts at '\ude00', which would cut the pair.
    const out1 = r.push('x😀a');
    expect(out1).toBe('x');
    expect(out1 + r.push('') + r.flush()).toBe('x😀a');
  });

  it('gives the same result however the text is cut (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', 'd', '\n', 'é');
    const word = fc.string({ unit: alphabet, minLength: 0, maxLength: 8 });
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 4 }),
        fc.string({ unit: alphabet, maxLength: 80 }),
        fc.array(fc.nat(80), { maxLength: 6 }),
        (secrets, text, cuts) => {
          const expected = naiveRedact(text, secrets);
          expect(redactAll(text, secrets)).toBe(expected);
          expect(pushInPieces(text, secrets, cuts.map((c) => Math.min(c, text.length)))).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
