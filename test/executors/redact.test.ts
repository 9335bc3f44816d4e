import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor, MIN_SECRET_LENGTH, redactAll } from '../../src/executors/redact.js';
import { secretForms } from '../../src/executors/secret-forms.js';

/**
 * Reference: the obvious quadratic scan (leftmost position, longest form there), each form matched by a
 * regular expression that allows one line break between any two characters.
 */
function naiveRedact(text: string, secrets: string[]): string {
  const forms = [...new Set(secrets.filter((s) => s.replace(/[\r\n]/g, '').length >= MIN_SECRET_LENGTH).flatMap((s) => secretForms(s, MIN_SECRET_LENGTH)))];
  const patterns = forms
    .sort((a, b) => b.length - a.length)
    .map((f) => new RegExp([...f].map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('(?:\r\n|\r|\n)?'), 'y'));
  let out = '';
  let i = 0;
  while (i < text.length) {
    const hit = patterns.map((p) => ((p.lastIndex = i), p.exec(text))).find((m) => m !== null);
    if (hit) {
      out += '***';
      i += hit[0].length;
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
    expect(redactAll('token=hunter22 and again hunter22; key=s3cr3t!!', ['hunter22', 's3cr3t!!'])).toBe('token=*** and again ***; key=***');
  });

  it(`ignores empty and too short values, redacts length ${MIN_SECRET_LENGTH}`, () => {
    expect(MIN_SECRET_LENGTH).toBe(8);
    expect(redactAll('a ab abcdefg abcdefgh', ['', 'a', 'ab', 'abcdefg'])).toBe('a ab abcdefg abcdefgh');
    expect(redactAll('abcdefg abcdefgh abcdefghi', ['abcdefgh'])).toBe('abcdefg *** ***i');
  });

  it('prefers the longest secret at a position', () => {
    expect(redactAll('xxabcdefghijklxx', ['abcdefgh', 'abcdefghijkl'])).toBe('xx***xx');
    expect(redactAll('xxabcdefghijkxx', ['abcdefgh', 'abcdefghijkl'])).toBe('xx***ijkxx');
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
    const r = createRedactor(['abcdefghij', 'uvwxyzuvwx']);
    expect(r.push('0123456789')).toBe('0123456789');
    expect(r.push('--abc')).toBe('--');
    expect(r.push('de')).toBe('');
    expect(r.push('!')).toBe('abcde!');
    // 'uvwxyzuvwx' is complete but 'abcdefghij' could still start inside the held part: wait.
    expect(r.push('uvwxyzuvwxab')).toBe('***');
    expect(r.flush()).toBe('ab');
  });

  it('waits for a longer secret that a complete shorter one begins', () => {
    const r = createRedactor(['abcdefgh', 'abcdefghijkl']);
    expect(r.push('xxabcdefgh')).toBe('xx');
    expect(r.push('ijkl')).toBe('***');
    expect(r.push('abcdefgh')).toBe('');
    expect(r.push(' ')).toBe('*** ');
  });

  it('does not split a surrogate pair between outputs', () => {
    const r = createRedactor(['\ude00abcdefgh']);
    // 'x', '\ud83d', '\ude00', 'a': the held part starts at '\ude00', which would cut the pair.
    const out1 = r.push('x😀a');
    expect(out1).toBe('x');
    expect(out1 + r.push('') + r.flush()).toBe('x😀a');
  });

  it('gives the same result however the text is cut (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', 'c', 'd', '\n', '\r', 'é');
    const word = fc.string({ unit: alphabet, minLength: 0, maxLength: 11 });
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 4 }),
        fc.string({ unit: alphabet, maxLength: 80 }),
        fc.array(fc.nat(80), { maxLength: 6 }),
        (secrets, text, cuts) => {
          const expected = naiveRedact(text, secrets);
          expect(redactAll(text, secrets)).toBe(expected);
          expect(
            pushInPieces(
              text,
              secrets,
              cuts.map((c) => Math.min(c, text.length)),
            ),
          ).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('redacts from a text made of secrets wrapped across lines and cut anywhere (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', 'Z', '9', '+', '/', '=', '%', ' ', 'é');
    const secret = fc.string({ unit: alphabet, minLength: 8, maxLength: 14 });
    const breakChar = fc.constantFrom('\n', '\r\n', '\r');
    fc.assert(
      fc.property(
        fc.array(secret, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(2), fc.nat(40), fc.option(breakChar), fc.nat(13), fc.string({ unit: alphabet, maxLength: 6 })), { maxLength: 5 }),
        fc.array(fc.nat(200), { maxLength: 6 }),
        (secrets, pieces, cuts) => {
          // Each piece: some plain text, then a secret (or one of its forms), wrapped at one point.
          let text = '';
          for (const [which, formIndex, br, at, plain] of pieces) {
            const value = secrets[which % secrets.length]!;
            const forms = secretForms(value, MIN_SECRET_LENGTH);
            const form = forms[formIndex % forms.length]!;
            text += plain + (br === null ? form : form.slice(0, 1 + (at % (form.length - 1))) + br + form.slice(1 + (at % (form.length - 1))));
          }
          const expected = naiveRedact(text, secrets);
          expect(redactAll(text, secrets)).toBe(expected);
          expect(
            pushInPieces(
              text,
              secrets,
              cuts.map((c) => Math.min(c, text.length)),
            ),
          ).toBe(expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** What a worker that handles a secret carelessly prints. */
describe('encoded and wrapped secrets', () => {
  const secret = 'ghp_Zq8vT3x?>Yw2~~Lk?é&';
  const bytes = Buffer.from(secret, 'utf8');
  const urlSafe = (b64: string) => b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  it('redacts the secret base64-encoded alone, standard and URL-safe, with its padding', () => {
    const b64 = bytes.toString('base64');
    expect(b64).toMatch(/[+/]/); // the two alphabets differ for this value
    expect(redactAll(`AUTH=${b64}\n`, [secret])).toBe('AUTH=***\n');
    expect(redactAll(`AUTH=${urlSafe(b64)}\n`, [secret])).toBe('AUTH=***\n');
  });

  it('redacts the secret inside a longer base64 stream at each of the 3 byte offsets', () => {
    for (const prefix of ['token=', 'token:', 'tok=']) {
      for (const suffix of ['', '\n', ' end', '!!']) {
        const stream = Buffer.from(prefix + secret + suffix, 'utf8').toString('base64');
        // The characters that depend only on the secret's bytes are replaced; the rest stays.
        const first = Math.ceil((Buffer.byteLength(prefix) * 8) / 6);
        const end = Math.floor(((Buffer.byteLength(prefix) + bytes.length) * 8) / 6);
        for (const encoded of [stream, urlSafe(stream)]) {
          // At the end of a stream that starts at a byte offset 0 modulo 3, the padding is the secret's too.
          const alone = suffix === '' && Buffer.byteLength(prefix) % 3 === 0;
          expect(redactAll(`echo ${encoded}`, [secret]), `${prefix}|${suffix}`).toBe(`echo ${encoded.slice(0, first)}***${alone ? '' : encoded.slice(end)}`);
        }
      }
    }
  });

  it('redacts the secret hex-encoded, lower and upper case, and URL-encoded', () => {
    expect(redactAll(`hex ${bytes.toString('hex')} .`, [secret])).toBe('hex *** .');
    expect(redactAll(`HEX ${bytes.toString('hex').toUpperCase()} .`, [secret])).toBe('HEX *** .');
    expect(redactAll(`GET /?t=${encodeURIComponent(secret)}&x=1`, [secret])).toBe('GET /?t=***&x=1');
    expect(redactAll(`GET /?t=${encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())}&x=1`, [secret])).toBe('GET /?t=***&x=1');
    expect(redactAll(`body t=${encodeURIComponent('pass word (1)!').replace(/%20/g, '+')}`, ['pass word (1)!'])).toBe('body t=***');
  });

  it('redacts a value wrapped across lines at any point, with LF or CRLF, however the text is cut', () => {
    for (let at = 1; at < secret.length; at++) {
      for (const br of ['\n', '\r\n']) {
        const text = `line one\nkey: ${secret.slice(0, at)}${br}${secret.slice(at)} rest\n`;
        const expected = 'line one\nkey: *** rest\n';
        expect(redactAll(text, [secret]), `at ${at}`).toBe(expected);
        for (let cut = 0; cut <= text.length; cut += 1) expect(pushInPieces(text, [secret], [cut])).toBe(expected);
      }
    }
  });

  it('redacts base64 wrapped at 76 columns, as `base64` prints a long value', () => {
    const long = `-----BEGIN KEY-----\n${'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'.repeat(4)}\n-----END KEY-----\n`;
    const wrapped = Buffer.from(long).toString('base64').replace(/.{76}/g, '$&\n');
    expect(wrapped.split('\n').length).toBeGreaterThan(2);
    expect(redactAll(`${wrapped}\n`, [long])).toBe('***\n');
    // The key itself, with CRLF line ends instead of its LF.
    expect(redactAll(long.replace(/\n/g, '\r\n'), [long])).toBe('***\r\n');
  });

  it('lists each form once and none shorter than the minimum', () => {
    const forms = secretForms('abcdefgh', MIN_SECRET_LENGTH);
    expect(new Set(forms).size).toBe(forms.length);
    expect(forms).toContain('abcdefgh');
    expect(forms).toContain('YWJjZGVmZ2g=');
    expect(forms).toContain('6162636465666768');
    expect(forms.every((f) => f.length >= MIN_SECRET_LENGTH)).toBe(true);
  });
});
